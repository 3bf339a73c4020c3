//go:build linux

package trace

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/topology"
)

// wireLab makes the reference lab's nodes as bare namespaces joined by
// its links, with its addresses: enough for a watch and a probe, without
// Docker.
func wireLab(t *testing.T, topo *topology.Topology) map[string]string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and loads the drop tracer")
	}
	nss := map[string]*netconf.Namespace{}
	paths := map[string]string{}
	for _, n := range topo.Nodes {
		ns, err := netconf.New(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ns.Close)
		nss[n.Name], paths[n.Name] = ns, fmt.Sprintf("/proc/self/fd/%d", ns.FD())
	}
	for _, l := range topo.Links {
		a := netconf.Endpoint{NS: nss[l.A.Node.Name], Name: l.A.Name, MAC: l.A.MAC}
		b := netconf.Endpoint{NS: nss[l.B.Node.Name], Name: l.B.Name, MAC: l.B.MAC}
		if err := netconf.CreateVeth(a, b, l.MTU); err != nil {
			t.Fatal(err)
		}
		for _, end := range []*topology.Interface{l.A, l.B} {
			if err := nss[end.Node.Name].ConfigureInterface(end.Name, end.Addr); err != nil {
				t.Fatal(err)
			}
		}
	}
	return paths
}

// Serve speaks the watch's protocol (wire.go) as the agent does: ready
// once it watches, a probe from the client's namespace, cut short on
// request, and the flow's packets after the stop.
func TestServe(t *testing.T) {
	topo := load(t, "labs/dsr.yaml")
	paths := wireLab(t, topo)
	// A link gone (both its ends) is reported, not a reason to fail.
	real, err := netconf.FromPath(paths["real"], "real")
	if err != nil {
		t.Fatal(err)
	}
	err = real.DeleteLink("eth0")
	real.Close()
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := topo.Resolved()
	if err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	served := make(chan error, 1)
	go func() {
		served <- Serve(context.Background(), inR, outW)
		outW.Close()
	}()
	t.Cleanup(func() { inW.Close(); outR.Close() })
	enc, dec := json.NewEncoder(inW), json.NewDecoder(outR)
	receive := func() watchReply {
		t.Helper()
		var rep watchReply
		if err := dec.Decode(&rep); err != nil {
			t.Fatalf("reply: %v (Serve: %v)", err, <-served)
		}
		return rep
	}
	send := func(v any) {
		t.Helper()
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	send(watchRequest{Topology: resolved, File: topo.File, Host: topology.LocalHost, Namespaces: paths})
	if rep := receive(); !rep.Ready {
		t.Fatalf("first reply %+v, want ready", rep)
	}

	// Nobody answers on the client's link: the probe waits until cut
	// short.
	send(watchCommand{Probe: &probeRequest{Client: "client", Dst: netip.MustParseAddrPort("10.111.220.99:9"), Proto: topology.ProtoTCP}})
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	send(watchCommand{Cancel: true})
	if rep := receive(); rep.Probe == nil || !strings.Contains(rep.Probe.Err, "cancel") || time.Since(start) > 2*time.Second {
		t.Fatalf("cancelled probe: %+v after %v", rep.Probe, time.Since(start))
	}

	// The router's own address refuses the connection: a SYN out of the
	// client, in at the router, and its RST back.
	dst := netip.MustParseAddrPort("10.111.220.12:9")
	send(watchCommand{Probe: &probeRequest{Client: "client", Dst: dst, Proto: topology.ProtoTCP}})
	rep := receive()
	if rep.Probe == nil || !strings.Contains(rep.Probe.Err, "refused") || !rep.Probe.Local.IsValid() {
		t.Fatalf("probe %+v, want refused from a bound socket", rep.Probe)
	}
	f := &Flow{VIP: topo.VIPs[0], Client: topo.Node("client"), Dst: dst}
	f.setLocal(rep.Probe.Local)
	ref := f.ref()
	send(watchCommand{Stop: &ref})
	rep = receive()
	if rep.Seen == nil || rep.Seen.Host != topology.LocalHost || rep.Seen.DropsOff != "" {
		t.Fatalf("report %+v, want the local host's with drops watched", rep.Seen)
	}
	if got := strings.Join(rep.Seen.NotUp, ", "); got != "real:eth0 missing, router:eth1 missing" {
		t.Errorf("interfaces not up: %q, want the deleted link's two ends missing", got)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	obs, _, _, _ := merge(topo, []*hostReport{rep.Seen})
	hops := f.Assemble(obs)
	if len(hops) == 0 || hops[0].Step != StepRequest || hops[0].From.String() != "client:eth0" || seen(hops[0]) != "out+in" {
		t.Fatalf("hops %v, want the request first, client:eth0 → router:eth2 out+in", hops)
	}
	// The watch kept the flow only: ARP and the cancelled probe's
	// packets stayed out.
	for _, p := range rep.Seen.Packets {
		if f.Classify(p.frame()) == ClassNone {
			t.Errorf("reported %s %s %s: not the flow", p.Node, p.Iface, p.frame().String(false))
		}
	}
}
