package pkttest

import (
	"strings"
	"testing"
)

// A case file written from observed frames reads back into expectations
// that the same outputs meet, and that another output does not.
func TestWriteCaseFileRoundTrip(t *testing.T) {
	in := buildPacket(t, `{eth: {src: router:eth0}, ip: {src: client:eth0, dst: 192.168.10.1}, tcp: {sport: 5, dport: 80, flags: S}, payload: "a: b"}`)
	out := buildPacket(t, `{eth: {src: client:eth0, dst: router:eth0}, vlan: {id: 3}, ip: {src: 10.0.0.1, dst: 10.0.0.2, df: true}, inner: {ipv6: {src: "fd00::1", dst: "fd00::2"}, ext: [{frag: {id: 9}}], icmpv6: {type: echo-reply, id: 1, seq: 2}}}`)
	obs := []Observed{
		{Frame: 1, In: in, Out: out, Verdict: XDPTX},
		{Frame: 2, In: in, Out: in, Verdict: XDPPass},
		{Frame: 3, In: in, Out: in, Verdict: XDPDrop},
		{Frame: 4, In: in, Out: in, Verdict: Verdict{HookXDP, 42}},
	}
	var b strings.Builder
	if err := WriteCaseFile(&b, CaseFileHeader{Capture: "lab.pcap", Topology: "lab.yaml", Node: "katran"}, obs); err != nil {
		t.Fatal(err)
	}
	if err := compileSchema(t).Validate(asJSON(t, []byte(b.String()))); err != nil {
		t.Errorf("the schema refuses the written file: %v\n%s", err, b.String())
	}
	text := strings.ReplaceAll(b.String(), "{from: lab.pcap, frame: 1}", "{hex: "+hexOf(in)+"}")
	text = strings.ReplaceAll(text, "{from: lab.pcap, frame: 2}", "{hex: "+hexOf(in)+"}")
	for _, frame := range []string{"3", "4"} {
		text = strings.ReplaceAll(text, "{from: lab.pcap, frame: "+frame+"}", "{hex: "+hexOf(in)+"}")
	}
	s, err := Parse([]byte(text), "w.yaml", nil, Target{})
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if h, _ := ReadHeader([]byte(text), "w.yaml"); h.Topology != "lab.yaml" || h.Node != "katran" || h.Program != "" {
		t.Errorf("header %+v", h)
	}
	if len(s.Cases) != 4 || !strings.HasPrefix(s.Cases[0].Name, "frame 1: 10.111.220.11.5 > 192.168.10.1.80 TCP S") {
		t.Fatalf("cases: %+v", s.Cases)
	}
	for i, c := range s.Cases {
		e := c.Steps[0].Expect
		if *e.Verdict != obs[i].Verdict {
			t.Errorf("case %d: verdict %s, want %s", i, e.Verdict, obs[i].Verdict)
		}
		if i >= 2 {
			if e.Packet != nil {
				t.Errorf("a dropped packet has an expected output")
			}
			continue
		}
		if ms := e.Packet.Compare(in, obs[i].Out); len(ms) > 0 {
			t.Errorf("case %d: its own output does not meet it: %+v\n%s", i, ms, b.String())
		}
		if ms := e.Packet.Compare(in, obs[1-i].Out); len(ms) == 0 {
			t.Errorf("case %d: another output meets it too\n%s", i, b.String())
		}
	}
}

func hexOf(b []byte) string { return format(of("", bytesK), Value{Bytes: b}) }

// A TC program's observed frames are written with TC verdicts by name
// (a value that is none, as the signed number a case file reads) and the
// program chosen, and read back as the same verdicts.
func TestWriteCaseFileTC(t *testing.T) {
	in := buildPacket(t, `{eth: {}, ip: {src: 10.0.0.1, dst: 10.0.0.2, ttl: 64}, udp: {sport: 1, dport: 2}}`)
	out := buildPacket(t, `{eth: {}, ip: {src: 10.0.0.1, dst: 10.0.0.2, ttl: 1}, udp: {sport: 1, dport: 2}}`)
	obs := []Observed{
		{Frame: 1, In: in, Out: out, Verdict: TCOK},
		{Frame: 2, In: in, Out: in, Verdict: TCShot},
		{Frame: 3, In: in, Out: in, Verdict: Verdict{HookTC, 0xfffffffe}},
	}
	var b strings.Builder
	if err := WriteCaseFile(&b, CaseFileHeader{Capture: "lab.pcap", Node: "real", Program: "eth0:egress"}, obs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"program: eth0:egress\n", "verdict: TC_ACT_OK\n", "ttl: 1", "verdict: TC_ACT_SHOT\n", "verdict: -2\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in:\n%s", want, b.String())
		}
	}
	text := b.String()
	for _, frame := range []string{"1", "2", "3"} {
		text = strings.ReplaceAll(text, "{from: lab.pcap, frame: "+frame+"}", "{hex: "+hexOf(in)+"}")
	}
	s, err := Parse([]byte(text), "w.yaml", nil, Target{Hook: HookTC})
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if h, _ := ReadHeader([]byte(text), "w.yaml"); h.Program != "eth0:egress" {
		t.Errorf("header %+v", h)
	}
	for i, c := range s.Cases {
		e := c.Steps[0].Expect
		if *e.Verdict != obs[i].Verdict || (e.Packet != nil) != (i == 0) {
			t.Errorf("case %d: %s, packet %v; want %s", i, e.Verdict, e.Packet, obs[i].Verdict)
		}
	}
	if ms := s.Cases[0].Steps[0].Expect.Packet.Compare(in, out); len(ms) > 0 {
		t.Errorf("the output does not meet its own case: %+v", ms)
	}
}
