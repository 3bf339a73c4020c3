package lab

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/dsrlab/dsrlab/internal/echo"
	"github.com/dsrlab/dsrlab/internal/health"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// nodeNamespace opens the network namespace of a node of a lab up on rt.
func nodeNamespace(t *testing.T, rt runtime.Runtime, topo *topology.Topology, node string) *netconf.Namespace {
	t.Helper()
	ns, err := rt.Namespace(context.Background(), topo.Node(node).ContainerName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	return ns
}

// askThroughMark sends a line on a marked connection from ns to addr and
// returns the real the echo service names in its answer.
func askThroughMark(t *testing.T, ns *netconf.Namespace, network, addr string, mark uint32) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := ns.DialMarked(ctx, network, addr, mark)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("which real?\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("%s %s (mark %#x): %v", network, addr, mark, err)
	}
	a, err := echo.Parse(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	return a.Real
}

// A katran's check of a real goes through the tunnel to that very real:
// the echo service that answers is the one the mark names, for TCP and
// UDP, whatever real the balancer's hash would have picked.
func TestHealthChecksReachTheirRealThroughTheTunnel(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr-3reals.yaml")
	_, rep := mustUp(t, rt, topo)
	if !slices.Contains(rep.steps, "healthcheck") {
		t.Fatalf("steps %v lack healthcheck", rep.steps)
	}
	k := topo.Node("katran")
	ns := nodeNamespace(t, rt, topo, "katran")
	if id, err := healthCheckProgram(ns, k.Uplink().Name); err != nil || id == 0 {
		t.Fatalf("no program on katran's TC egress: %d, %v", id, err)
	}
	targets := health.Targets(topo, k)
	if len(targets) != 5 { // 3 reals of the TCP VIP, 2 of the UDP one
		t.Fatalf("%d targets, want 5: %+v", len(targets), targets)
	}
	dial := health.Dialer(ns.DialMarked)
	for _, tg := range targets {
		network := string(tg.VIP.Proto)
		addr := net.JoinHostPort(tg.VIP.Address.String(), "50007")
		if tg.VIP.Proto == topology.ProtoUDP {
			addr = net.JoinHostPort(tg.VIP.Address.String(), "50008")
		}
		for range 3 { // several source ports: the hash plays no part
			if got := askThroughMark(t, ns, network, addr, tg.Mark); got != tg.Real.Name {
				t.Errorf("%s check of %s (mark %#x) answered by %s", tg.VIP, tg.Real.Name, tg.Mark, got)
			}
		}
		if _, err := health.Run(context.Background(), dial, tg); err != nil {
			t.Errorf("%s check of %s: %v", tg.VIP, tg.Real.Name, err)
		}
	}

	// The second up finds the program and its marks as they should be.
	if sum, _ := mustUp(t, rt, topo); sum.Changes != 0 {
		t.Errorf("second up made %d changes, want 0", sum.Changes)
	}
	// A controller that is not running is a problem inspect names, and
	// up mends.
	if err := rt.Stop(context.Background(), controllerName(topo), false); err != nil {
		t.Fatal(err)
	}
	repairs(t, rt, topo, "controller dsr3-dsrlab-controller is not running")

	// Without its decapsulation, real2 fails its checks although its
	// service runs: the check went through the tunnel.
	r2 := nodeNamespace(t, rt, topo, "real2")
	att, err := r2.XDP("eth0")
	if err != nil || att.Mode == 0 {
		t.Skipf("real2 does not decapsulate in XDP here (%v, %v)", att, err)
	}
	if err := r2.DetachXDP("eth0", att.Mode); err != nil {
		t.Fatal(err)
	}
	// Without the VIP on its lo, real3 fails too, although it forwards
	// (ip_forward=1 here): the check cannot go on to the router and be
	// balanced to a real that would answer in its place.
	r3 := nodeNamespace(t, rt, topo, "real3")
	if err := r3.Do(func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.AddrDel(lo, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("192.168.10.1"), Mask: net.CIDRMask(32, 32)}})
	}); err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		broken := tg.Real.Name == "real2" || (tg.Real.Name == "real3" && tg.VIP.Address.String() == "192.168.10.1")
		for range 5 { // the hash of a forwarded check would find another real in a few tries
			_, err := health.Run(context.Background(), dial, tg)
			if (err != nil) != broken {
				t.Errorf("%s check of %s without real2's decap and real3's VIP: error %v", tg.VIP, tg.Real.Name, err)
			}
		}
	}
}

// A lab without checks gets no TC program.
func TestNoHealthChecksNoProgram(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	mustUp(t, rt, topo)
	ns := nodeNamespace(t, rt, topo, "katran")
	if id, err := healthCheckProgram(ns, topo.Node("katran").Uplink().Name); err != nil || id != 0 {
		t.Errorf("katran's TC egress holds program %d (%v); the lab has no checks", id, err)
	}
}

// Checks taken out of a running lab: up removes the controller and its
// health, and leaves the TC program with no marks (it passes everything).
func TestChecksRemovedFromARunningLab(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr-3reals.yaml")
	mustUp(t, rt, topo)
	if !slices.Contains(labNames(t, rt, topo.Name), controllerName(topo)) {
		t.Fatalf("no controller among %v", labNames(t, rt, topo.Name))
	}
	if err := health.WriteState(labDir(topo.Name), health.State{Reals: []health.Real{{Key: health.Key{VIP: "192.168.10.1:50007/tcp", Katran: "katran", Real: "real1"}, Status: health.Down}}}); err != nil {
		t.Fatal(err)
	}
	for _, v := range topo.VIPs {
		v.HealthCheck = nil
	}
	mustUp(t, rt, topo)
	if slices.Contains(labNames(t, rt, topo.Name), controllerName(topo)) {
		t.Errorf("controller left in a lab without checks: %v", labNames(t, rt, topo.Name))
	}
	if st, err := health.ReadState(labDir(topo.Name)); err != nil || len(st.Reals) != 0 {
		t.Errorf("health left behind: %+v, %v", st, err)
	}
	k := topo.Node("katran")
	ns := nodeNamespace(t, rt, topo, "katran")
	id, err := healthCheckProgram(ns, k.Uplink().Name)
	if err != nil || id == 0 {
		t.Fatalf("TC program gone (%d, %v); want it kept, empty", id, err)
	}
	hc, err := openHealthCheck(id, k.Uplink())
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	if tunnels, err := hc.Tunnels(); err != nil || len(tunnels) != 0 {
		t.Errorf("marks left: %v, %v", tunnels, err)
	}
	if sum, _ := mustUp(t, rt, topo); sum.Changes != 0 {
		t.Errorf("up again made %d changes", sum.Changes)
	}
}
