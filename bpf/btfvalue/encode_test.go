package btfvalue

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/cilium/ebpf/btf"
	"gopkg.in/yaml.v3"
)

// encodeCases are values with bytes worked out by hand from the layouts in types_test.go. They are
// shared with the decode round trip, which must give the same bytes back.
var encodeCases = []struct {
	name string
	t    btf.Type
	in   string
	want string // hex
}{
	{"u32 key", u32T, "0", "00000000"},
	{"u32 host order", u32T, "0x01020304", "04030201"},
	{"const is peeled", constU32, "1", "01000000"},
	{"u32 from IPv4 literal is network order", u32T, "10.0.0.1", "0a000001"},
	{"be16 number", be16, "8080", "1f90"},
	{"be32 number", be32, "0x0a000001", "0a000001"},
	{"be32 IPv4", be32, "192.168.10.1", "c0a80a01"},
	{"be64", be64, "0x0102030405060708", "0102030405060708"},
	{"typedef over be32", ipT, "10.1.2.3", "0a010203"},
	{"u64 max", u64T, "18446744073709551615", "ffffffffffffffff"},
	{"decimal with leading zero is not octal", u16T, "010", "0a00"},
	{"s8 min", s8, "-128", "80"},
	{"s16 negative", s16, "-300", "d4fe"},
	{"s16 negative hex", s16, "-0x10", "f0ff"},
	{"s32 -1", s32, "-1", "ffffffff"},
	{"bool true", boolT, "true", "01"},
	{"bool false", boolT, "false", "00"},
	{"enum by name", mode, "MODE_NAT", "07000000"},
	{"enum by number", mode, "2", "02000000"},
	{"signed enum by name", delta, "DOWN", "ff"},
	{"IPv6 into bytes", arr(uchar, 16), "2001:db8::1", "20010db8 00000000 00000000 00000001"},
	{"IPv6 into be32[4]", arr(be32, 4), "2001:db8::1", "20010db8 00000000 00000000 00000001"},
	{"IPv4-mapped into 16 bytes", arr(u8T, 16), "::ffff:10.0.0.1", "00000000 00000000 0000ffff 0a000001"},
	{"IPv4 into u8[4]", arr(u8T, 4), "10.0.0.1", "0a000001"},
	{"MAC", arr(u8T, 6), "02:aa:bb:cc:dd:ee", "02aabbccddee"},
	{"MAC as a list", arr(u8T, 6), "[2, 0xaa, 187]", "02aabb000000"},
	{"char array text", arr(char, 5), "web", "7765620000"},
	{"char array text filling it", arr(char, 3), "web", "776562"},
	{"char array as numbers", arr(char, 3), "[-1, 65]", "ff4100"},
	{"padding is zero", padded, "{a: 1, b: 0x01020304, c: 65535}", "01000000 04030201 ffff0000"},
	{"members left out are zero", padded, "{c: 1}", "00000000 00000000 01000000"},
	{"empty mapping", padded, "{}", "00000000 00000000 00000000"},
	{"config from the issue", config, `
real_server_ip: 10.111.222.11
lb_vip: 192.168.10.1
src_mac: 02:00:00:00:00:01
dst_mac: 02:11:22:33:44:55
`, "0a6fde0b c0a80a01 020000000001 021122334455"},
	{"references", config, "{real_server_ip: real:eth0, src_mac: katran:eth0, dst_mac: router:eth0}",
		"0a6fde0b 00000000 020000000001 021122334455"},
	{"IPv6 reference", arr(u8T, 16), "real:eth0", "20010db8000000000000000000000011"},
	{"union by one member", addr, "{v4: 1.2.3.4}", "01020304 00000000 00000000 00000000"},
	{"union by its other member", addr, "{v6: 2001:db8::1}", "20010db8 00000000 00000000 00000001"},
	{"union member as a list", addr, "{v6: [1.2.3.4, 0, 0, 1]}", "01020304 00000000 00000000 00000001"},
	{"bitfields", signedbits, "{x: -1, y: 0x123, d: UP}", "3f12 01"},
	{"u16 in network order", u16T, "!be 50007", "c357"},
	{"be16 in network order twice over", be16, "!be 50007", "c357"},
	{"u32 in network order, hex", u32T, "!be 0x0a000001", "0a000001"},
	{"enum in network order", mode, "!be MODE_NAT", "00000007"},
	{"Katran's vip_definition", vipDef, "{vip: 192.168.10.1, port: !be 50007, proto: 6}", "c0a80a01 00000000 00000000 00000000 c357 06 00"},
	{"union members that agree", same, "{a: 5, b: 5}", "05000000"},
	{"MAC in Katran's ctl_value", ctl, "{mac: 02:aa:bb:cc:dd:ee}", "02aabbccddee 0000"},
	{"signed bitfield minimum", signedbits, "{x: -8, y: -2048}", "0880 00"},
	{"YAML alias", padded, "{a: &one 1, c: *one}", "01000000 00000000 01000000"},
	{"nested everything", service, `
cfg:
  real_server_ip: 10.111.222.11
  dst_mac: [1, 2, 3]
vip: {v6: 2001:db8::1}
port: 80
proto: 6
name: web
mode: MODE_DSR
pads:
  - {a: 1, b: 2, c: 3}
src: 10.0.0.9
low: 5
high: 17
up: true
weight: -2
grid: [[1, 2], [3]]
seq: 1
`,
		"0a6fde0b 00000000 000000000000 010203000000" + // cfg
			"20010db8 00000000 00000000 00000001" + // vip
			"0050 06 7765620000" + // port, proto, name
			"02000000" + // mode
			"01000000 02000000 03000000 00000000 00000000 00000000" + // pads
			"0a000009 00000000 00000000 00000000" + // anonymous union by src
			"8d 01 feff" + // low|high<<3, up, weight
			"0100 0200 0300 0000" + // grid
			"00000000" + // padding before seq
			"0000000000000001"},
}

func TestEncode(t *testing.T) {
	for _, tc := range encodeCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EncodeString(tc.t, tc.in, fakeLab)
			if err != nil {
				t.Fatalf("EncodeString(%q): %v", tc.in, err)
			}
			if want := unhex(t, tc.want); !bytes.Equal(got, want) {
				t.Errorf("EncodeString(%q)\n got %x\nwant %x", tc.in, got, want)
			}
		})
	}
}

// TestEncodeNode checks the path the topology loader takes: a node inside a larger document, with
// its errors at that document's lines.
func TestEncodeNode(t *testing.T) {
	doc := `
maps:
  lb_map:
    - key: 0
      value:
        real_server_ip: real:eth0
        lb_vip: katran:eth0
`
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	entry := root.Content[0].Content[1].Content[1].Content[0]
	key, value := entry.Content[1], entry.Content[3]
	if got, err := Encode(u32T, key, nil); err != nil || !bytes.Equal(got, []byte{0, 0, 0, 0}) {
		t.Errorf("key: got %x, %v", got, err)
	}
	if _, err := Encode(config, nil, fakeLab); err == nil || err.Error() != "0:0: no value given" {
		t.Errorf("nil node: %v", err)
	}
	_, err := Encode(config, value, fakeLab)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want an *Error", err)
	}
	if got, want := e.Within("maps.lb_map[0].value").Error(), `7:17: maps.lb_map[0].value.lb_vip: katran:eth0: that interface has no address of this family`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    btf.Type
		in   string
		r    Resolver
		want string
	}{
		{"field absent", config, "{lb_vip: 1, vip: 2}", fakeLab,
			`1:13: vip: struct config has no field "vip"; its fields are: real_server_ip, lb_vip, src_mac, dst_mac`},
		{"field absent lists anonymous members", service, "{srcv4: 1}", fakeLab,
			`1:2: srcv4: struct service has no field "srcv4"; its fields are: cfg, vip, port, proto, name, mode, pads, src, srcv6, low, high, up, weight, grid, seq`},
		{"field absent deep", service, "{pads: [{}, {d: 1}]}", fakeLab,
			`1:14: pads[1].d: struct padded has no field "d"; its fields are: a, b, c`},
		{"u8 too big", u8T, "256", nil, `1:1: 256 does not fit __u8 (unsigned 8-bit: 0..255)`},
		{"be16 too big", service, "{port: 70000}", nil, `1:8: port: 70000 does not fit __be16 (unsigned 16-bit: 0..65535)`},
		{"unsigned negative", u32T, "-1", nil, `1:1: -1 does not fit __u32 (unsigned 32-bit: 0..4294967295)`},
		{"s16 too small", s16, "-32769", nil, `1:1: -32769 does not fit short (signed 16-bit: -32768..32767)`},
		{"bitfield too big", service, "{low: 8}", nil, `1:7: low: 8 does not fit __u8 (unsigned 3-bit: 0..7)`},
		{"signed bitfield too big", signedbits, "{x: 8}", nil, `1:5: x: 8 does not fit int (signed 4-bit: -8..7)`},
		{"array element too big", service, "{cfg: {dst_mac: [1, 2, 300]}}", nil,
			`1:24: cfg.dst_mac[2]: 300 does not fit unsigned char (unsigned 8-bit: 0..255)`},
		{"not a number", u16T, "eighty", nil, `1:1: "eighty" is not a number (decimal or 0x hex; !be N for network byte order) for __u16`},
		{"octal is not a number", u16T, "0o10", nil, `1:1: "0o10" is not a number (decimal or 0x hex; !be N for network byte order) for __u16`},
		{"not an address", config, "{lb_vip: 10.0.0}", fakeLab,
			`1:10: lb_vip: "10.0.0" is not a number, an IPv4 address or a NODE:IFACE reference for __be32`},
		{"IPv6 into 4 bytes", be32, "::1", nil, `1:1: ::1 is an IPv6 address; __be32 holds 4 bytes, an IPv4 address`},
		{"IPv4 into 16 bytes", addr, "{v6: 10.0.0.1}", nil,
			`1:6: v6: 10.0.0.1 is an IPv4 address; __be32[4] holds 16 bytes, an IPv6 address (write ::ffff:10.0.0.1 for IPv4-mapped)`},
		{"bad MAC", config, "{src_mac: 02:aa:bb}", fakeLab,
			`1:11: src_mac: "02:aa:bb" is not a MAC (02:aa:bb:cc:dd:ee) or a NODE:IFACE reference for unsigned char[6]`},
		{"reference without a resolver", config, "{src_mac: real:eth0}", nil,
			`1:11: src_mac: real:eth0 is a NODE:IFACE reference, and references are not allowed here (there is no lab to resolve them)`},
		{"reference naming nothing", config, "{real_server_ip: ghost:eth0}", fakeLab,
			`1:18: real_server_ip: ghost:eth0: no node "ghost" in the lab`},
		{"reference of the wrong size", be32, "real:eth0", func(string, int) ([]byte, error) { return []byte{1}, nil },
			`1:1: real:eth0 resolved to 1 bytes; __be32 holds 4`},
		{"reference where no address goes", u16T, "real:eth0", fakeLab,
			`1:1: "real:eth0" is not a number (decimal or 0x hex; !be N for network byte order) for __u16`},
		{"list where a struct goes", service, "{cfg: [1, 2]}", nil,
			`1:7: cfg: struct config takes a mapping of its fields (real_server_ip, lb_vip, src_mac, dst_mac), not a list`},
		{"scalar where a struct goes", padded, "7", nil, `1:1: struct padded takes a mapping of its fields (a, b, c), not "7"`},
		{"mapping where a list goes", service, "{grid: {a: 1}}", nil, `1:8: grid: __u16[2][2] takes a list of up to 2 elements, not a mapping`},
		{"scalar where a list goes", service, "{pads: 1}", nil, `1:8: pads: struct padded[2] takes a list of up to 2 elements, not "1"`},
		{"list where a number goes", service, "{proto: [6]}", nil, `1:9: proto: __u8 takes a single value, not a list`},
		{"too many elements", config, "{dst_mac: [1, 2, 3, 4, 5, 6, 7]}", nil,
			`1:30: dst_mac[6]: too many elements: unsigned char[6] holds 6, the list has 7`},
		{"text too long", service, "{name: toolong}", nil, `1:8: name: "toolong" is 7 bytes; char[5] holds 5`},
		{"unknown enum name", service, "{mode: MODE_FAST}", nil,
			`1:8: mode: "MODE_FAST" is not a value of enum mode (MODE_OFF, MODE_DSR, MODE_NAT) or a number`},
		{"enum number too big", mode, "0x100000000", nil, `1:1: 0x100000000 does not fit enum mode (unsigned 32-bit: 0..4294967295)`},
		{"bad bool", service, "{up: yes}", nil, `1:6: up: _Bool takes true or false, not "yes"`},
		{"union with two members", addr, "{v4: 1.2.3.4, v6: '::1'}", nil,
			`1:15: v6: union addr takes one member, and v4 and v6 give it different bytes`},
		{"anonymous union with two members", service, "{src: 1.2.3.4, srcv6: '::1'}", nil,
			`1:16: srcv6: union takes one member, and src and srcv6 give it different bytes`},
		{"be on a struct", config, "!be {lb_vip: 1.2.3.4}", nil, `1:1: !be goes on an integer field; struct config is not one`},
		{"error in an alias's value is placed where it is used", padded, "{b: &big 70000, c: *big}", nil,
			"1:20: c: 70000 does not fit __u16 (unsigned 16-bit: 0..65535) (in *big, anchored at line 1)"},
		{"be on a bitfield", signedbits, "{y: !be 1}", nil, `1:5: y: !be does not go on a bitfield`},
		{"be on an array", arr(u8T, 4), "!be 5", nil, `1:1: !be goes on an integer field; __u8[4] is not one`},
		{"another tag", u16T, "!le 5", nil, `1:1: unknown tag !le: the one tag is !be before an integer, for network byte order (port: !be 50007)`},
		{"be beyond the field", u16T, "!be 70000", nil, `1:1: 70000 does not fit __u16 (unsigned 16-bit: 0..65535)`},
		{"union with no member", addr, "{}", nil, `1:1: union addr takes exactly one of: v4, v6`},
		{"no value", service, "{cfg: {lb_vip: }}", nil, `1:16: cfg.lb_vip: no value given for __be32 (write 0 for zero)`},
		{"field given twice", padded, "{a: 1, a: 2}", nil, `1:8: a: given twice`},
		{"key that is not a name", padded, "{[a]: 1}", nil, `1:2: struct padded: a field name must be a plain name, not a list`},
		{"unsupported kind", &btf.Struct{Name: "f", Size: 4, Members: []btf.Member{member("x", float, 0)}}, "{x: 1.5}", nil,
			`1:5: x: cannot write float: fields of this kind are not supported`},
		{"network-order bitfield", &btf.Struct{Name: "b", Size: 4, Members: []btf.Member{bitfield("x", be32, 0, 4)}}, "{x: 1}", nil,
			`1:5: x: __be32: bitfields of network-order types are not supported`},
		{"enum name too wide for its bitfield", &btf.Struct{Name: "b", Size: 4, Members: []btf.Member{bitfield("m", mode, 0, 2)}}, "{m: MODE_NAT}", nil,
			`1:5: m: MODE_NAT does not fit enum mode (unsigned 2-bit: 0..3)`},
		{"not YAML", padded, "{a: [", nil, "1:1: not a YAML value: yaml: line 1: did not find expected node content"},
		{"empty", padded, "", nil, "1:1: no value given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EncodeString(tc.t, tc.in, tc.r)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("EncodeString(%q) = %x, %v; want an *Error", tc.in, got, err)
			}
			if e.Error() != tc.want {
				t.Errorf("EncodeString(%q)\n got %s\nwant %s", tc.in, e.Error(), tc.want)
			}
		})
	}
}

func TestErrorWithin(t *testing.T) {
	for _, tc := range []struct{ prefix, path, want string }{
		{"value", "cfg.x", "value.cfg.x"},
		{"value", "[2]", "value[2]"},
		{"value", "", "value"},
		{"", "cfg", "cfg"},
	} {
		e := &Error{Path: tc.path}
		if got := e.Within(tc.prefix).Path; got != tc.want {
			t.Errorf("Within(%q) of %q = %q, want %q", tc.prefix, tc.path, got, tc.want)
		}
	}
	if e := (&Error{Line: 3, Column: 4, Msg: "m"}); e.Error() != "3:4: m" {
		t.Errorf("pathless error = %q", e.Error())
	}
}

func ExampleEncodeString() {
	b, err := EncodeString(config, "{real_server_ip: 10.111.222.11, src_mac: 02:aa:bb:cc:dd:ee}", nil)
	fmt.Printf("%x %v\n", b, err)
	// Output: 0a6fde0b0000000002aabbccddee000000000000 <nil>
}

// TestEncodeMask checks that the mask covers exactly the fields named: what a packet test's map
// expectation compares.
func TestEncodeMask(t *testing.T) {
	for _, tc := range []struct {
		name       string
		t          btf.Type
		in         string
		value, msk string // hex
	}{
		{"one member of several", padded, "{b: 7}", "00000000 07000000 00000000", "00000000 ffffffff 00000000"},
		{"padding is never named", padded, "{a: 1, c: 2}", "01000000 00000000 02000000", "ff000000 00000000 ffff0000"},
		{"address and MAC", config, "{lb_vip: 192.168.10.1, dst_mac: router:eth0}",
			"00000000 c0a80a01 000000000000 021122334455", "00000000 ffffffff 000000000000 ffffffffffff"},
		{"text covers the whole array", arr(char, 5), "web", "7765620000", "ffffffffff"},
		{"short list names its elements only", arr(u8T, 6), "[2, 0xaa]", "02aa00000000", "ffff00000000"},
		{"bitfield bits only", signedbits, "{y: 0}", "0000 00", "f0ff 00"},
		{"a whole scalar", u32T, "5", "05000000", "ffffffff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tc.in), &doc); err != nil {
				t.Fatal(err)
			}
			value, mask, err := EncodeMask(tc.t, &doc, fakeLab)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tc.value); !bytes.Equal(value, want) {
				t.Errorf("value %x, want %x", value, want)
			}
			if want := unhex(t, tc.msk); !bytes.Equal(mask, want) {
				t.Errorf("mask %x, want %x", mask, want)
			}
		})
	}
}
