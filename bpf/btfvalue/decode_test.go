package btfvalue

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
	"gopkg.in/yaml.v3"
)

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		t        btf.Type
		in       string // hex
		text     string
		wantJSON string
	}{
		{"config", config, "0a6fde0b c0a80a01 02aabbccddee 021122334455",
			"{real_server_ip: 10.111.222.11, lb_vip: 192.168.10.1, src_mac: 02:aa:bb:cc:dd:ee, dst_mac: 02:11:22:33:44:55}",
			`{"real_server_ip":"10.111.222.11","lb_vip":"192.168.10.1","src_mac":"02:aa:bb:cc:dd:ee","dst_mac":"02:11:22:33:44:55"}`},
		{"u32 is a number, not an IP", u32T, "0a000001", "16777226", "16777226"},
		{"global data: its variables by name", &btf.Datasec{Name: ".rodata", Size: 12, Vars: []btf.VarSecinfo{
			{Type: &btf.Var{Name: "verdict", Type: u32T}, Offset: 0, Size: 4},
			{Type: &btf.Var{Name: "vip", Type: &btf.Volatile{Type: &btf.Const{Type: be32}}}, Offset: 8, Size: 4},
		}}, "02000000 ffffffff c0a80a01", "{verdict: 2, vip: 192.168.10.1}", `{"verdict":2,"vip":"192.168.10.1"}`},
		{"be16 is a number in network order", be16, "1f90", "8080", "8080"},
		{"be64", be64, "0102030405060708", "72623859790382856", "72623859790382856"},
		{"u64 beyond float precision", u64T, "ffffffffffffffff", "18446744073709551615", "18446744073709551615"},
		{"s16", s16, "d4fe", "-300", "-300"},
		{"enum by name", mode, "07000000", "MODE_NAT", `"MODE_NAT"`},
		{"enum value without a name", mode, "05000000", "5", "5"},
		{"signed enum", delta, "ff", "DOWN", `"DOWN"`},
		{"bool", boolT, "01", "true", "true"},
		{"bool holding something else", boolT, "02", "2", "2"},
		{"u8[16] is an IPv6 address", arr(u8T, 16), "20010db8 00000000 00000000 00000001", "2001:db8::1", `"2001:db8::1"`},
		{"unspecified IPv6 is quoted", arr(u8T, 16), "00000000 00000000 00000000 00000000", `"::"`, `"::"`},
		{"u8[4] is a list", arr(u8T, 4), "0a000001", "[10, 0, 0, 1]", "[10,0,0,1]"},
		{"u32[4] in host order is a list", arr(u32T, 4), "01000000 02000000 03000000 04000000", "[1, 2, 3, 4]", "[1,2,3,4]"},
		{"text", arr(char, 5), "7765620000", "web", `"web"`},
		{"empty text", arr(char, 3), "000000", `""`, `""`},
		{"text that looks like a number is quoted", arr(char, 4), "31323300", `"123"`, `"123"`},
		{"text with a comma is quoted", arr(char, 5), "612c206200", `"a, b"`, `"a, b"`},
		{"char array that is no text", arr(char, 3), "ff4100", "[-1, 65, 0]", "[-1,65,0]"},
		{"text followed by junk is no text", arr(char, 3), "410042", "[65, 0, 66]", "[65,0,66]"},
		{"padding is skipped", padded, "01ffffff 04030201 ffffffff", "{a: 1, b: 16909060, c: 65535}", `{"a":1,"b":16909060,"c":65535}`},
		{"union shows the member its non-zero bytes fit", addr, "01020304 00000000 00000000 00000000", `{v4: 1.2.3.4}`, `{"v4":"1.2.3.4"}`},
		{"union whose bytes need the wider member", addr, "01020304 00000000 00000000 00000001", `{v6: 102:304::1}`, `{"v6":"102:304::1"}`},
		{"zero union shows its smallest member", addr, "00000000 00000000 00000000 00000000", `{v4: 0.0.0.0}`, `{"v4":"0.0.0.0"}`},
		{"union of equal sizes shows every member", same, "05000000", `{a: 5, b: 5}`, `{"a":5,"b":5}`},
		{"a MAC in a union beside a u64", ctl, "02aabbccddee0000", `{mac: 02:aa:bb:cc:dd:ee}`, `{"mac":"02:aa:bb:cc:dd:ee"}`},
		{"an ifindex in a union beside a u64", ctl, "0700000000000000", `{ifindex: 7}`, `{"ifindex":7}`},
		{"bitfields", signedbits, "3f12 01", "{x: -1, y: 291, d: UP}", `{"x":-1,"y":291,"d":"UP"}`},
		{"nested", service,
			"0a6fde0b 00000000 000000000000 010203000000" +
				"20010db8 00000000 00000000 00000001" +
				"0050 06 7765620000" +
				"02000000" +
				"01000000 02000000 03000000 00000000 00000000 00000000" +
				"0a000009 00000000 00000000 00000000" +
				"8d 01 feff" +
				"0100 0200 0300 0000" +
				"00000000" +
				"0000000000000001",
			"{cfg: {real_server_ip: 10.111.222.11, lb_vip: 0.0.0.0, src_mac: 00:00:00:00:00:00, dst_mac: 01:02:03:00:00:00}, " +
				"vip: {v6: 2001:db8::1}, port: 80, proto: 6, name: web, mode: MODE_DSR, " +
				"pads: [{a: 1, b: 2, c: 3}, {a: 0, b: 0, c: 0}], src: 10.0.0.9, low: 5, high: 17, up: true, weight: -2, " +
				"grid: [[1, 2], [3, 0]], seq: 1}",
			`{"cfg":{"real_server_ip":"10.111.222.11","lb_vip":"0.0.0.0","src_mac":"00:00:00:00:00:00","dst_mac":"01:02:03:00:00:00"},` +
				`"vip":{"v6":"2001:db8::1"},"port":80,"proto":6,"name":"web","mode":"MODE_DSR",` +
				`"pads":[{"a":1,"b":2,"c":3},{"a":0,"b":0,"c":0}],"src":"10.0.0.9","low":5,"high":17,"up":true,"weight":-2,` +
				`"grid":[[1,2],[3,0]],"seq":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Decode(tc.t, unhex(t, tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := v.String(); got != tc.text {
				t.Errorf("String()\n got %s\nwant %s", got, tc.text)
			}
			j, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if string(j) != tc.wantJSON {
				t.Errorf("JSON\n got %s\nwant %s", j, tc.wantJSON)
			}
		})
	}
}

// TestRoundTrip: what Decode prints, EncodeString reads back to the same bytes, for every encoding
// case (so for every kind of field).
func TestRoundTrip(t *testing.T) {
	for _, tc := range encodeCases {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.want)
			v, err := Decode(tc.t, want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := EncodeString(tc.t, v.String(), nil)
			if err != nil {
				t.Fatalf("EncodeString(%q): %v", v.String(), err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s encodes back to\n %x\nnot %x", v, got, want)
			}
			if j, _ := json.Marshal(v); !json.Valid(j) {
				t.Errorf("invalid JSON %s", j)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    btf.Type
		in   []byte
		want string
	}{
		{"too short", config, make([]byte, 19), "19 bytes for struct config, which is 20"},
		{"too long", u32T, make([]byte, 5), "5 bytes for __u32, which is 4"},
		{"unsupported member", &btf.Struct{Name: "f", Size: 4, Members: []btf.Member{member("x", float, 0)}}, make([]byte, 4),
			"x: cannot read float: fields of this kind are not supported"},
		{"member beyond the end", &btf.Struct{Name: "f", Size: 4, Members: []btf.Member{member("x", u32T, 32)}}, make([]byte, 4),
			"x: the BTF is broken: no size, or beyond the value's end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.t, tc.in)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v, want %s", err, tc.want)
			}
		})
	}
}

func TestDecodePerCPU(t *testing.T) {
	cpus := [][]byte{
		unhex(t, "0100000000000000 0a000001 64000000 61620000 02000000"),
		unhex(t, "0200000000000000 0a000001 32000000 63640000 02000000"),
	}
	per, sum, err := DecodePerCPU(counters, cpus)
	if err != nil {
		t.Fatal(err)
	}
	if len(per) != 2 || per[1].String() != "{packets: 2, addr: 10.0.0.1, bytes: 50, tag: cd, mode: MODE_DSR}" {
		t.Errorf("per CPU: %v", per)
	}
	// Counters add up; the address and mode agree, so they stay; the text differs and says so.
	if want := `{packets: 3, addr: 10.0.0.1, bytes: 150, tag: "(differs per CPU)", mode: MODE_DSR}`; sum.String() != want {
		t.Errorf("sum\n got %s\nwant %s", sum, want)
	}
	if _, _, err := DecodePerCPU(counters, nil); err == nil {
		t.Error("no CPUs: no error")
	}
	if _, _, err := DecodePerCPU(counters, [][]byte{cpus[0], {1}}); err == nil || err.Error() != "cpu 1: 1 bytes for struct counters, which is 24" {
		t.Errorf("short value: %v", err)
	}
}

// A map's values print the way the topology wrote them: a plain __u16 given
// as !be reads back as !be, and a union by the member the topology used,
// even where another member would fit its bytes.
func TestHints(t *testing.T) {
	h := NewHints()
	for _, text := range []string{
		"{vip: 192.168.10.1, port: !be 50007, proto: 6}",
		"{vipv6: 'fd00::1', port: 80, proto: 17}",
	} {
		if _, err := h.Encode(vipDef, yamlNode(t, text), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		// Both members were used: each entry by the one that fits.
		{"c0a80a01 00000000 00000000 00000000 c357 06 00", "{vip: 192.168.10.1, port: !be 50007, proto: 6}"},
		{"fd000000 00000000 00000000 00000001 0050 11 00", "{vipv6: fd00::1, port: !be 80, proto: 17}"},
	} {
		v, err := h.Decode(vipDef, unhex(t, tc.in))
		if err != nil {
			t.Fatal(err)
		}
		if v.String() != tc.want {
			t.Errorf("got %s, want %s", v, tc.want)
		}
		back, err := EncodeString(vipDef, v.String(), nil)
		if err != nil || !bytes.Equal(back, unhex(t, tc.in)) {
			t.Errorf("%s encodes back to %x, %v", v, back, err)
		}
		if j, _ := json.Marshal(v); !strings.Contains(string(j), `"port":`) || strings.Contains(string(j), "!be") {
			t.Errorf("JSON %s: want the port as a plain number", j)
		}
	}
	// One member used: every entry shown by it.
	h = NewHints()
	if _, err := h.Encode(vipDef, yamlNode(t, "{vipv6: 'fd00::1'}"), nil); err != nil {
		t.Fatal(err)
	}
	if v, err := h.Decode(vipDef, unhex(t, "c0a80a01 00000000 00000000 00000000 c357 06 00")); err != nil ||
		v.String() != `{vipv6: "c0a8:a01::", port: 22467, proto: 6}` {
		t.Errorf("by the one member used: %s, %v", v, err)
	}
	// Without hints: the member that fits, the port in host order.
	v, err := Decode(vipDef, unhex(t, "c0a80a01 00000000 00000000 00000000 c357 06 00"))
	if err != nil || v.String() != "{vip: 192.168.10.1, port: 22467, proto: 6}" {
		t.Errorf("without hints: %s, %v", v, err)
	}
}

func yamlNode(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(text), &n); err != nil {
		t.Fatal(err)
	}
	return &n
}
