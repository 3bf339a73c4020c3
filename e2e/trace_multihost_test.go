package e2e

import (
	"regexp"
	"testing"

	"github.com/dsrlab/dsrlab/labs"
)

// The simulated host of the trace tests across hosts.
const (
	traceHost      = "e2h4"
	traceHostIndex = 3
)

// hopWant is a hop of a trace: step, from and to, and whether both of
// its sightings paired.
type hopWant struct {
	step, from, to string
	paired         bool
}

// referenceSteps are the reference README's six steps, the SYN's way there
// and the SYN-ACK's way back. The links to the other host are VXLAN: their
// hops pair a sighting on each host. XDP_TX is seen at the router only.
var referenceSteps = []hopWant{
	{"Request", "client:eth0", "router:eth2", true},
	{"Forward", "router:eth0", "katran:eth0", false},
	{"IPIP Encap", "katran:eth0", "router:eth0", false},
	{"Forward IPIP", "router:eth1", "real:eth0", true},
	{"DSR Reply", "real:eth0", "router:eth1", true},
	{"Return", "router:eth2", "client:eth0", true},
}

// checkHops wants the trace's first hops to be these.
func checkHops(t *testing.T, out traceOut, want []hopWant) {
	t.Helper()
	if len(out.Hops) < len(want) {
		t.Fatalf("%d hops, want at least %d: %+v", len(out.Hops), len(want), out.Hops)
	}
	for i, w := range want {
		h := out.Hops[i]
		if h.Step != w.step || h.From != w.from || h.To != w.to {
			t.Errorf("hop %d: %s %s → %s, want %s %s → %s", i+1, h.Step, h.From, h.To, w.step, w.from, w.to)
		}
		if w.paired && (!h.SeenOut || !h.SeenIn) {
			t.Errorf("hop %d (%s) seen out %v in %v: want both ends, paired across the hosts", i+1, h.Step, h.SeenOut, h.SeenIn)
		}
	}
}

// A trace on a lab over two hosts: each host watched where it is (the
// other by dsrlab's agent), the VXLAN link between them a hop like any
// other, drops named by the kernel of the host they happened on.
func TestTraceSeveralHosts(t *testing.T) {
	requireSetup(t)
	startHost(t, traceHost, traceHostIndex)
	hosts := hostsBlockWith(traceHost, traceHostIndex)

	t.Run("real on the other host", func(t *testing.T) {
		const name = "mtr"
		file := traceLab(t, labs.Reference, name, "mtr-", "defaults:", hosts+"defaults:",
			"real:   {kind: real}", "real:   {kind: real, host: "+traceHost+"}")
		clean := func(t *testing.T) {
			t.Helper()
			out, code := trace(t, "--name", name)
			checkClean(t, out, code, "real 10.111.222.11")
			if out.Verdict.Path != "direct return" {
				t.Errorf("path %q, want direct return", out.Verdict.Path)
			}
			checkHops(t, out, referenceSteps)
			if h := out.Hops[4]; len(h.IP) != 1 || h.IP[0].Src != vip || h.IP[0].TCPFlags != "S." {
				t.Errorf("DSR Reply %+v, want the SYN-ACK from the VIP, seen on the real's host", h.IP)
			}
			if out.DropsOff != "" {
				t.Errorf("kernel drops not watched: %s", out.DropsOff)
			}
		}
		t.Run("clean", clean)

		t.Run("VIP removed from the real's lo", func(t *testing.T) {
			if out, err := dsrlab(t, "exec", "--name", name, "real", "--", "ip", "addr", "del", vip+"/32", "dev", "lo"); err != nil {
				t.Fatalf("remove the VIP: %v\n%s", err, out)
			}
			defer func() {
				if out, err := dsrlab(t, "up", "-q", "-t", file); err != nil {
					t.Fatalf("up to repair: %v\n%s", err, out)
				}
				clean(t)
			}()
			out, code := trace(t, "--name", name)
			// Seen arriving on the other host, dropped there, by its kernel,
			// in a function named from that host's kallsyms.
			checkBroken(t, out, code, "real", "reached real eth0", "no reply left real", "kernel: real eth0: ")
			if !regexp.MustCompile(`kernel: real eth0: [A-Z_]+ in [a-z_0-9]+`).MatchString(out.Verdict.Summary) {
				t.Errorf("the drop on the other host names no kernel function: %s", out.Verdict.Summary)
			}
		})
	})

	t.Run("client on the other host", func(t *testing.T) {
		const name = "mtc"
		traceLab(t, labs.Reference, name, "mtc-", "defaults:", hosts+"defaults:",
			"client: {kind: client}", "client: {kind: client, host: "+traceHost+"}")
		// The probe runs on the client's host, by the agent there.
		out, code := trace(t, "--name", name)
		checkClean(t, out, code, "real 10.111.222.11")
		if out.Verdict.Path != "direct return" {
			t.Errorf("path %q, want direct return", out.Verdict.Path)
		}
		checkHops(t, out, referenceSteps)
	})
}
