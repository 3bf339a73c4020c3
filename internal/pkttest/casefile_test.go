package pkttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/internal/capture"
	"github.com/dsrlab/dsrlab/internal/capture/filter"
)

// TestBadCaseFiles: each problem is reported at its line and column, with
// the field's path, and all of a file's problems at once.
func TestBadCaseFiles(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"unknown layer", `
cases:
  - name: a
    packet: {eth: {}, ipx: {src: 1.2.3.4}}
    expect: {verdict: XDP_PASS}
`, []string{"t.yaml:4:23: cases[0].packet.ipx: unknown field; this takes eth, vlan, ip, ipv4, ipv6, ext, tcp, udp, icmp, icmpv6, inner, payload"}},
		{"unknown field", `
cases:
  - name: a
    packet:
      ip: {src: 1.2.3.4, dst: 1.2.3.5}
      tcp: {sport: 1, port: 2}
    expect: {verdict: XDP_PASS}
`, []string{`t.yaml:6:23: cases[0].packet.tcp.port: tcp has no field "port"; its fields: sport, dport, flags, seq, ack, win, off, urg, checksum, options`}},
		{"value out of range", `
cases:
  - name: a
    packet: {ip: {src: 1.2.3.4, dst: 1.2.3.5, ttl: 256}}
    expect: {verdict: XDP_PASS}
`, []string{"t.yaml:4:52: cases[0].packet.ip.ttl: 256 is out of range: 8 bits hold 0 to 255"}},
		{"NODE:IFACE of no node", `
cases:
  - name: a
    packet: {eth: {src: nobody:eth0}}
    expect: {verdict: XDP_PASS}
`, []string{`t.yaml:4:25: cases[0].packet.eth.src: "nobody:eth0" names no node:interface of lab test`}},
		{"address of the other family", `
cases:
  - name: a
    packet: {ipv6: {src: 10.0.0.1}}
    expect: {verdict: XDP_PASS}
`, []string{"t.yaml:4:26: cases[0].packet.ipv6.src: 10.0.0.1 is not an IPv6 address"}},
		{"every problem at once", `
cases:
  - name: a
    packet: {ip: {proto: sctp}, tcp: {flags: SX}}
    expect: {verdict: XDP_PAS}
  - name: a
    repeat: 0
    packet: {hex: "zz"}
    expect: {packet: {tcp: {checksum: ok}}}
`, []string{
			`t.yaml:4:26: cases[0].packet.ip.proto: "sctp" is not a number, or one of: dest, frag, hop, icmp, icmpv6, ipip, ipv4, ipv6, none, routing, tcp, udp`,
			`t.yaml:4:46: cases[0].packet.tcp.flags: "SX": TCP flags are letters of F S R P A (or .) U E C, e.g. S, SA, FA, or a number`,
			`t.yaml:5:23: cases[0].expect.verdict: "XDP_PAS" is not a verdict: want one of XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT`,
			`t.yaml:6:5: cases[1].name: "a" names another case too`,
			`t.yaml:7:13: cases[1].repeat: "0": want a number of runs from 1 to 1000000`,
			`t.yaml:8:19: cases[1].packet.hex: "zz" is not bytes in hex ("0a0b0c", spaces allowed)`,
		}},
		{"shapes", `
cases:
  - name: a
    packet: {ip: {src: 1.2.3.4}, tcp: {}, inner: {ip: {}}}
    expect: {packet: 3}
  - packet: {tcp: {}}
    expect: {}
`, []string{
			"t.yaml:4:43: cases[0].packet.inner: inner is the packet of a tunnel (no transport header) or the one an ICMP error quotes, not something tcp carries",
			`t.yaml:5:22: cases[0].expect.packet: "3": want unchanged, {hex: ...} or the packet's layers`,
			"t.yaml:6:5: cases[1].name: missing: every case has a name",
			"t.yaml:6:14: cases[1].packet.tcp: tcp needs an IP header (ip, ipv4 or ipv6) before it",
			"t.yaml:7:13: cases[1].expect: names nothing to check: give a verdict, a packet, maps or skb",
		}},
		{"a field of one family under ip", `
cases:
  - name: a
    packet: {hex: "00"}
    expect: {packet: {ip: {proto: ipip, df: true}}}
`, []string{"t.yaml:5:41: cases[0].expect.packet.ip.df: df belongs to one family: write ipv4: or ipv6: (or give an address) instead of ip:"}},
		{"checksum ok is for expectations", `
cases:
  - name: a
    packet: {ip: {checksum: ok}}
    expect: {verdict: 2}
`, []string{"t.yaml:4:29: cases[0].packet.ip.checksum: ok and bad are for expectations; a packet sent has its checksum computed unless a number is given"}},
		{"no cases", "topology: lab.yaml\n", []string{"t.yaml:1:1: cases: missing: a case file lists its cases under cases:"}},
		{"YAML syntax", "cases:\n  - name: [\n", []string{"t.yaml:2: did not find expected node content"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file), "t.yaml", fakeLab, Target{})
			if err == nil {
				t.Fatal("accepted")
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestPacketFromCapture takes a frame of a pcap file, named relative to
// the case file.
func TestPacketFromCapture(t *testing.T) {
	dir := t.TempDir()
	frame := buildPacket(t, `{eth: {}, ip: {src: 10.0.0.1, dst: 10.0.0.2}, udp: {sport: 1, dport: 2}}`)
	f, err := os.Create(filepath.Join(dir, "lab.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := capture.NewPcapWriter(f, filter.Ethernet)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]byte{{1, 2, 3}, frame} {
		if err := w.WritePacket(capture.Packet{Data: p, Length: len(p)}); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	file := filepath.Join(dir, "cases.yaml")
	s, err := Parse([]byte("cases:\n  - name: a\n    packet: {from: lab.pcap, frame: 2}\n    expect: {verdict: XDP_PASS}\n"), file, nil, Target{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Cases[0].Steps[0].Packet; string(got) != string(frame) {
		t.Errorf("frame 2: %x, want %x", got, frame)
	}
	_, err = Parse([]byte("cases:\n  - name: a\n    packet: {from: lab.pcap, frame: 3}\n    expect: {verdict: XDP_PASS}\n"), file, nil, Target{})
	if want := file + ":3:37: cases[0].packet.frame: lab.pcap has 2 frames"; err == nil || err.Error() != want {
		t.Errorf("frame 3: %v, want %s", err, want)
	}
}

// Inner packets nest a bounded number of times, even through aliases.
func TestInnerDepthIsBounded(t *testing.T) {
	file := "cases:\n  - name: deep\n    expect: {verdict: 2}\n    packet: &p {ip: {}, inner: {ip: {}, inner: {ip: {}, inner: {ip: {}, inner: {ip: {}, inner: {ip: {}, inner: {ip: {}, inner: {ip: {}, inner: {ip: {}, inner: {ip: {}}}}}}}}}}}\n"
	_, err := Parse([]byte(file), "t.yaml", nil, Target{})
	if err == nil || !strings.Contains(err.Error(), "inner packets nest at most 8 deep") {
		t.Errorf("got %v", err)
	}
}

// TestTCCaseFiles: a case file is read against the program it runs: a
// TC program's verdicts and socket buffer, and an XDP program's verdicts
// only; the other hook's are errors at their place.
func TestTCCaseFiles(t *testing.T) {
	tc := Target{Hook: HookTC, Name: "tc_healthcheck"}
	xdp := Target{Hook: HookXDP, Name: "xdp_lb"}
	const tcVerdicts = "TC_ACT_UNSPEC, TC_ACT_OK, TC_ACT_RECLASSIFY, TC_ACT_SHOT, TC_ACT_PIPE, TC_ACT_STOLEN, TC_ACT_QUEUED, TC_ACT_REPEAT, TC_ACT_REDIRECT, TC_ACT_TRAP"
	for _, c := range []struct {
		name   string
		target Target
		file   string
		want   []string
	}{
		{"XDP verdict from a TC program", tc, `
cases:
  - name: a
    packet: {hex: "0000000000000000000000000800"}
    expect: {verdict: XDP_PASS}
  - name: b
    packet: {hex: "0000000000000000000000000800"}
    expect: {verdict: tx}
`, []string{
			"t.yaml:5:23: cases[0].expect.verdict: XDP_PASS is an XDP verdict, and tc_healthcheck is a TC program: want one of " + tcVerdicts,
			"t.yaml:8:23: cases[1].expect.verdict: tx is an XDP verdict, and tc_healthcheck is a TC program: want one of " + tcVerdicts,
		}},
		{"TC verdict from an XDP program", xdp, `
cases:
  - name: a
    packet: {hex: "0000000000000000000000000800"}
    expect: {verdict: TC_ACT_SHOT}
  - name: b
    packet: {hex: "0000000000000000000000000800"}
    expect: {verdict: -1}
`, []string{
			"t.yaml:5:23: cases[0].expect.verdict: TC_ACT_SHOT is a TC verdict, and xdp_lb is an XDP program: want one of XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT",
			`t.yaml:8:23: cases[1].expect.verdict: "-1" is not a verdict: want one of XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT`,
		}},
		{"skb of an XDP program", xdp, `
cases:
  - name: a
    packet: {hex: "0000000000000000000000000800", skb: {mark: 1}}
    expect: {verdict: XDP_PASS, skb: {mark: 1}}
`, []string{
			"t.yaml:4:56: cases[0].packet.skb: skb is a TC program's socket buffer (struct __sk_buff), and xdp_lb is an XDP program",
			"t.yaml:5:38: cases[0].expect.skb: skb is a TC program's socket buffer (struct __sk_buff), and xdp_lb is an XDP program",
		}},
		{"skb fields", tc, `
cases:
  - name: a
    packet:
      skb: {mark: 0x100000000, ifindex: 3, priority: [1]}
      eth: {}
      ip: {src: 10.0.0.1, dst: 10.0.0.2}
    expect: {verdict: TC_ACT_OK, skb: {mark: x}}
`, []string{
			"t.yaml:5:19: cases[0].packet.skb.mark: 4294967296 is out of range: 32 bits hold 0 to 4294967295",
			"t.yaml:5:32: cases[0].packet.skb.ifindex: unknown field; this takes mark, priority",
			"t.yaml:5:54: cases[0].packet.skb.priority: a single value, not a list",
			`t.yaml:8:46: cases[0].expect.skb.mark: "x" is not a number`,
		}},
		{"a TC verdict out of range", tc, `
cases:
  - name: a
    packet: {hex: "0000000000000000000000000800"}
    expect: {verdict: 4294967296}
`, []string{
			`t.yaml:5:23: cases[0].expect.verdict: "4294967296" is not a verdict: want one of ` + tcVerdicts,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.file), "t.yaml", fakeLab, c.target)
			if err == nil {
				t.Fatal("accepted")
			}
			if got, want := err.Error(), strings.Join(c.want, "\n"); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestTCCaseFileReads: a TC case file's socket buffer and verdicts, and
// its header's program, with where it is.
func TestTCCaseFileReads(t *testing.T) {
	data := []byte(`node: katran
program: eth0:egress
cases:
  - name: a
    packet: {skb: {mark: 0x64730000, priority: 7}, eth: {}, ip: {src: 10.0.0.1, dst: 10.0.0.2}}
    expect: {verdict: -1, skb: {mark: 2}}
`)
	h, err := ReadHeader(data, "t.yaml")
	if err != nil || h.Program != "eth0:egress" || h.ProgramAt != [2]int{2, 10} || h.NodeAt != [2]int{1, 7} {
		t.Errorf("header %+v %v", h, err)
	}
	s, err := Parse(data, "t.yaml", fakeLab, Target{Hook: HookTC})
	if err != nil {
		t.Fatal(err)
	}
	st := s.Cases[0].Steps[0]
	if *st.SKB != (SKB{Mark: 0x64730000, Priority: 7}) {
		t.Errorf("skb %+v", st.SKB)
	}
	if *st.Expect.Verdict != TCUnspec || len(st.Expect.SKB) != 1 || st.Expect.SKB[0].Value != 2 {
		t.Errorf("expect %+v", st.Expect)
	}
}
