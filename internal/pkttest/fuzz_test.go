package pkttest

import (
	"os"
	"testing"
)

// FuzzParse: no case file makes the parser panic, read for an XDP or a TC
// program, and every packet it builds dissects.
func FuzzParse(f *testing.F) {
	for _, file := range []string{"../../examples/xdp-lb-minimal/cases.yaml", "../../examples/xdp-lb-hash/cases.yaml",
		"../../labs/cases/balancer.yaml", "../../labs/cases/healthcheck.yaml", "testdata/failing.yaml", "testdata/tc-cases.yaml"} {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("cases:\n  - name: a\n    packet: {ipv6: {src: \"::1\"}, ext: [hop, {frag: {}}], inner: {ip: {}}}\n    expect: {packet: {inner: {tcp: {}}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		Parse(data, "f.yaml", fakeLab, Target{Hook: HookTC})
		s, err := Parse(data, "f.yaml", fakeLab, Target{})
		if err != nil {
			return
		}
		for _, c := range s.Cases {
			for _, st := range c.Steps {
				layers := Dissect(st.Packet)
				LayerLines(layers)
				if st.Expect.Packet != nil {
					st.Expect.Packet.Compare(st.Packet, st.Packet)
				}
			}
		}
	})
}

// FuzzDissect: any bytes dissect without a panic, and every field lies
// inside the frame.
func FuzzDissect(f *testing.F) {
	f.Add([]byte{})
	f.Add(unhexSeed("ffffffffffff0200000000020806"))
	f.Add(unhexSeed("0000000000000000000000000800450000280000000040060000"))
	f.Add(unhexSeed("00000000000000000000000086dd6000000000082c40" + "00000000000000000000000000000001" + "00000000000000000000000000000002" + "3a00000100000007"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, l := range Dissect(b) {
			for _, fl := range l.Fields {
				if fl.Off < 0 || fl.Off+fl.Len > len(b) {
					t.Fatalf("%s.%s at %d+%d in %d bytes", l.Kind, fl.Name, fl.Off, fl.Len, len(b))
				}
			}
		}
	})
}

func unhexSeed(s string) []byte {
	v, err := parseValue(of("", bytesK), s, false, nil)
	if err != nil {
		panic(err)
	}
	return v.Bytes
}
