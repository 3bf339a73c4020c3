package lab

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/bpf"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/topology"
)

func load(t *testing.T, file string) *topology.Topology {
	t.Helper()
	topo, err := topology.Load("../../labs/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestWiringIgnoresRealsButNothingElse(t *testing.T) {
	a, b := load(t, "dsr-3reals.yaml"), load(t, "dsr-3reals.yaml")
	v, err := FindVIP(b, "192.168.10.1:50007")
	if err != nil {
		t.Fatal(err)
	}
	if err := SetRealWeight(b, v, "real1", 7); err != nil {
		t.Fatal(err)
	}
	if err := RemoveReal(b, v, "real2"); err != nil {
		t.Fatal(err)
	}
	if d := wiringDiff(a, b); d != "" {
		t.Errorf("reals and weights changed the wiring: %s", d)
	}
	b.Nodes[0].Interfaces[0].MTU = 1400
	if d := wiringDiff(a, b); !strings.Contains(d, "mtu=1400") {
		t.Errorf("an MTU change is not a wiring change: %q", d)
	}
	c := load(t, "dsr-3reals.yaml")
	c.VIPs[0].Service = topology.ServiceNone
	if d := wiringDiff(a, c); !strings.Contains(d, "service=none") {
		t.Errorf("a service change is not a wiring change: %q", d)
	}
	if d := wiringDiff(a, load(t, "dsr.yaml")); d == "" {
		t.Error("two different labs have the same wiring")
	}
}

func TestRealChanges(t *testing.T) {
	topo := load(t, "dsr-3reals.yaml")
	udp, err := FindVIP(topo, "192.168.10.2:50008/udp")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		change  func() error
		wantErr string
	}{
		{"add a third real", func() error { return SetRealWeight(topo, udp, "real3", 2) }, ""},
		{"drain it", func() error { return SetRealWeight(topo, udp, "real3", 0) }, ""},
		{"not a real", func() error { return SetRealWeight(topo, udp, "router", 1) }, `no real node "router"`},
		{"weight too high", func() error { return SetRealWeight(topo, udp, "real1", topology.MaxWeight+1) }, "at most"},
		{"remove one", func() error { return RemoveReal(topo, udp, "real1") }, ""},
		{"remove an absent one", func() error { return RemoveReal(topo, udp, "real1") }, "is not a real of"},
	} {
		err := tc.change()
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.wantErr)
		}
	}
	got := map[string]uint32{}
	for _, r := range udp.Reals {
		got[r.Node.Name] = r.Weight
	}
	if len(got) != 2 || got["real2"] != 1 || got["real3"] != 0 {
		t.Errorf("reals after the changes: %v", got)
	}
	if err := RemoveReal(topo, udp, "real2"); err != nil {
		t.Fatal(err)
	}
	if err := RemoveReal(topo, udp, "real3"); err == nil || !strings.Contains(err.Error(), "drain it instead") {
		t.Errorf("removing the last real: %v", err)
	}
}

func TestFindVIP(t *testing.T) {
	topo := load(t, "dsr-3reals.yaml")
	for spec, want := range map[string]string{
		"192.168.10.1:50007":     "192.168.10.1:50007/tcp",
		"192.168.10.1:50007/tcp": "192.168.10.1:50007/tcp",
		"192.168.10.2:50008":     "192.168.10.2:50008/udp",
		"192.168.10.9:1":         "",
	} {
		v, err := FindVIP(topo, spec)
		switch {
		case want == "" && err == nil:
			t.Errorf("FindVIP(%q) found %s", spec, v)
		case want != "" && (err != nil || v.String() != want):
			t.Errorf("FindVIP(%q) = %v, %v; want %s", spec, v, err, want)
		}
	}
}

func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		env       string
		start     string // step that fails at its start
		step      string
		okActions int // actions allowed before the fault
	}{
		{env: "xdp", start: "xdp"},
		{env: "links:2", step: "links", okActions: 2},
		{env: "containers:0", step: "containers", okActions: 0},
	} {
		t.Setenv(FaultEnv, tc.env)
		f, err := faultFromEnv()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"images", "links", "xdp", "containers"} {
			if got := f.atStart(s) != nil; got != (s == tc.start) {
				t.Errorf("%s: atStart(%s) = %v", tc.env, s, got)
			}
		}
		if tc.step != "" {
			for i := range tc.okActions {
				if f.atAction(tc.step, i) != nil {
					t.Errorf("%s: action %d failed", tc.env, i)
				}
			}
			if f.atAction(tc.step, tc.okActions) == nil {
				t.Errorf("%s: action %d did not fail", tc.env, tc.okActions)
			}
		}
	}
	t.Setenv(FaultEnv, "links:x")
	if _, err := faultFromEnv(); err == nil {
		t.Error("a malformed fault was accepted")
	}
}

func TestSameRealsIgnoresOrder(t *testing.T) {
	a := []bpf.Real{{Addr: netip.MustParseAddr("10.0.0.1"), Weight: 1}, {Addr: netip.MustParseAddr("10.0.0.2"), Weight: 2}}
	b := []bpf.Real{a[1], a[0]}
	if !sameReals(a, b) {
		t.Error("same reals in another order differ")
	}
	b[0].Weight = 3
	if sameReals(a, b) {
		t.Error("a weight change went unnoticed")
	}
	if sameReals(a, a[:1]) {
		t.Error("a removed real went unnoticed")
	}
}

func TestGroupedFoldsSharedValues(t *testing.T) {
	m := map[string]string{"katran": "native"}
	for _, r := range []string{"real1", "real2", "real3", "real4"} {
		m[r] = "xdp"
	}
	if got, want := Grouped(m), "4 nodes (real1 ... real4): xdp; katran: native"; got != want {
		t.Errorf("Grouped = %q, want %q", got, want)
	}
}

func TestCompareNamesWhatIsMissing(t *testing.T) {
	topo := load(t, "dsr.yaml")
	healthy := func() map[string]*NodeReport {
		nodes := map[string]*NodeReport{}
		for _, n := range topo.Nodes {
			nr := &NodeReport{Node: n.Name, State: "running"}
			for _, i := range n.Interfaces {
				nr.Interfaces = append(nr.Interfaces, netconf.Interface{Name: i.Name, Addrs: []netip.Prefix{i.Addr}})
			}
			nodes[n.Name] = nr
		}
		nodes["katran"].Balancer = &BalancerReport{Interface: "eth0"}
		nodes["real"].Decap = ipipDecap
		nodes["real"].Loopback = []string{"192.168.10.1"}
		return nodes
	}
	if p := compare(topo, healthy()); len(p) != 0 {
		t.Fatalf("a healthy lab has problems: %q", p)
	}
	broken := healthy()
	broken["katran"].Interfaces = nil
	broken["katran"].Balancer = nil
	broken["real"].Loopback = nil
	delete(broken, "client")
	got := strings.Join(compare(topo, broken), "\n")
	for _, want := range []string{"node client: no container", "node katran: interface eth0 is missing", "node katran: no XDP balancer", "node real: VIP 192.168.10.1 is not on lo"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems do not say %q:\n%s", want, got)
		}
	}
}

func TestParallelRunsEachOnceWithinTheBound(t *testing.T) {
	var mu sync.Mutex
	running, peak := 0, 0
	seen := make([]int, 50)
	parallel(len(seen), 4, func(i int) {
		mu.Lock()
		running++
		peak = max(peak, running)
		seen[i]++
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
	})
	for i, n := range seen {
		if n != 1 {
			t.Errorf("fn(%d) ran %d times", i, n)
		}
	}
	if peak > 4 {
		t.Errorf("%d calls at once, want at most 4", peak)
	}
	parallel(0, 4, func(int) { t.Error("fn called for n = 0") })
}

// The topology names hash modes the way the balancer does; a mode the
// balancer does not know would silently become the default.
func TestHashModesAreTheBalancers(t *testing.T) {
	for _, m := range []topology.HashMode{topology.HashFiveTuple, topology.HashNoSrcPort, topology.HashDstPortOnly} {
		h, err := bpf.ParseHashMode(string(m))
		if err != nil || h.String() != string(m) {
			t.Errorf("hash mode %q: balancer reads %v, %v", m, h, err)
		}
	}
}

// real add/drain/remove refuse a VIP that the user's own program balances,
// and change nothing.
func TestRealChangesRefusedForOwnBalancer(t *testing.T) {
	topo, err := topology.Load("../../examples/xdp-lb-minimal/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	v := topo.VIPs[0]
	before := len(v.Reals)
	for _, change := range []func() error{
		func() error { return SetRealWeight(topo, v, "real", 0) },
		func() error { return SetRealWeight(topo, v, "real", 3) },
		func() error { return RemoveReal(topo, v, "real") },
	} {
		if err := change(); err == nil || !strings.Contains(err.Error(), "balanced by katran's own program (xdp_lb.c)") {
			t.Errorf("change of a user-balanced VIP: %v", err)
		}
	}
	if len(v.Reals) != before || v.Reals[0].Weight != topology.DefaultWeight {
		t.Errorf("reals changed: %+v", v.Reals)
	}
}
