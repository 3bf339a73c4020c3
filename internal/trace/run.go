//go:build linux

package trace

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// Options choose the flow to trace.
type Options struct {
	VIP    *topology.VIP
	Client *topology.Node
	// Port is the port probed; 0 means the VIP's own.
	Port uint16
}

// probePayload is small: the trace shows every segment of the probe, and
// one short line is all it takes to get an answer.
const probePayload = 32

// Run traces one probe flow from opt.Client to opt.VIP through the lab: it
// captures on every interface of every node and watches the kernel's drops
// in their namespaces, on each host of the lab, while the client talks to
// the VIP.
func Run(ctx context.Context, rts runtime.Set, topo *topology.Topology, opt Options) (*Result, error) {
	v, client := opt.VIP, opt.Client
	port := opt.Port
	if port == 0 {
		port = v.Port
	}
	if port == topology.AnyPort {
		return nil, fmt.Errorf("VIP %s serves every port: name the one to probe", v)
	}
	f := &Flow{VIP: v, Client: client, Dst: netip.AddrPortFrom(v.Address, port)}

	ws, err := startWatches(ctx, rts, topo)
	if err != nil {
		return nil, err
	}
	defer ws.close()
	// Every host watches by now: the probe's first packet is seen
	// wherever it goes.
	ex, err := ws[client.Host.Name].probe(ctx, probeRequest{Client: client.Name, Dst: f.Dst, Proto: v.Proto})
	if err != nil {
		return nil, err
	}
	f.setLocal(ex.Local)
	reports, err := ws.stop(ctx, f.ref())
	if err != nil {
		return nil, err
	}
	obs, drops, notUp, dropsOff := merge(topo, reports)
	res := &Result{Flow: f, Probe: Probe{Answer: ex.Answer, From: ex.From, Err: ex.Err}, NotUp: notUp, DropsOff: dropsOff}
	res.Hops = f.Assemble(obs)
	res.Drops = f.collect(drops)
	res.Verdict = f.Judge(res.Hops, res.Probe, res.Drops, notUp...)
	return res, nil
}

// setLocal sets the client socket's address and port. A connection that
// never came up has its port, not its address: the client's own address
// is the one it used.
func (f *Flow) setLocal(local netip.AddrPort) {
	f.Local = local
	if !local.Addr().IsValid() || local.Addr().IsUnspecified() {
		f.Local = netip.AddrPortFrom(clientAddr(f.Client, f.Dst.Addr().Is6()), local.Port())
	}
}

// clientAddr is the client's address on its link to a router, else on
// any link.
func clientAddr(n *topology.Node, v6 bool) netip.Addr {
	if up := n.Uplink(); up != nil && up.AddrOf(v6).IsValid() {
		return up.AddrOf(v6).Addr()
	}
	for _, ifc := range n.Interfaces {
		if ifc.AddrOf(v6).IsValid() {
			return ifc.AddrOf(v6).Addr()
		}
	}
	return netip.Addr{}
}

// watches are the watches of the lab's hosts, by host name.
type watches map[string]hostWatch

// startWatches starts a watch on every host that runs nodes of the lab,
// all at once, and returns when all of them watch.
func startWatches(ctx context.Context, rts runtime.Set, t *topology.Topology) (watches, error) {
	ws := watches{}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, h := range lab.HostsInUse(t) {
		wg.Go(func() {
			w, err := startHostWatch(ctx, rts, t, h)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			ws[h] = w
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		ws.close()
		return nil, errors.Join(errs...)
	}
	return ws, nil
}

// startHostWatch watches the local host's nodes from this process, and
// another host's through its agent.
func startHostWatch(ctx context.Context, rts runtime.Set, t *topology.Topology, host string) (hostWatch, error) {
	if host != topology.LocalHost {
		return startRemote(ctx, rts, t, host)
	}
	nss := map[string]*netconf.Namespace{}
	for _, n := range t.Nodes {
		if n.Host.Name != host {
			continue
		}
		ns, err := lab.NodeNamespace(ctx, rts, t, n.Name)
		if err != nil {
			closeAll(nss)
			return nil, err
		}
		nss[n.Name] = ns
	}
	return startWatch(ctx, t, host, nss)
}

// stop stops every watch, all at once: each waits settle. The reports
// come in host order.
func (ws watches) stop(ctx context.Context, f flowRef) ([]*hostReport, error) {
	hosts := slices.Sorted(maps.Keys(ws))
	reports := make([]*hostReport, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() { reports[i], errs[i] = ws[h].stop(ctx, f) })
	}
	wg.Wait()
	return reports, errors.Join(errs...)
}

func (ws watches) close() {
	for _, w := range ws {
		w.close()
	}
}
