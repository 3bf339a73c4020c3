package lab

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/dsrlab/dsrlab/bpf"
	"github.com/dsrlab/dsrlab/topology"
)

// Loading one of dsrlab's own XDP programs is mostly the kernel verifying
// it (the balancer takes a good part of a second on a busy machine), and
// needs no container: only attaching it does. So up loads them in the
// builtins step, in the background while the engine starts the
// containers, and the decap and xdp steps attach what it loaded.

// builtins are dsrlab's own programs that the builtins step loaded and no
// step attached yet, by node. A step that attaches one takes it (and
// closes it once attached: the interface then holds the program); up
// closes what is left when it ends, whether it failed or not — the
// decap program of a real that got the kernel's ipip device instead, or
// everything after a failure.
type builtins struct {
	// reals and katrans are the nodes whose programs the step loads,
	// which preflight chooses.
	reals, katrans []*topology.Node

	mu        sync.Mutex // the builtins step fills it from its own goroutine
	balancers map[string]*bpf.Balancer
	decaps    map[string]*bpf.Decap
}

func newBuiltins() *builtins {
	return &builtins{balancers: map[string]*bpf.Balancer{}, decaps: map[string]*bpf.Decap{}}
}

func (b *builtins) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, lb := range b.balancers {
		lb.Close()
	}
	for _, dc := range b.decaps {
		dc.Close()
	}
	clear(b.balancers)
	clear(b.decaps)
}

// loadBuiltins is the builtins step: it loads the balancer of every katran
// and the decap program of every real that this run starts the container
// of (in a container that runs, they may be attached already, and the
// xdp and decap steps look before they load). A real whose kernel turns
// out to have ipip does not need its decap program: loading it costs the
// background a few milliseconds, while asking the kernel first would need
// the real's namespace.
func (d *deployment) loadBuiltins(ctx context.Context) (string, error) {
	reals, katrans := d.pre.reals, d.pre.katrans
	loaded := map[string]string{}
	done := 0
	load := func(n *topology.Node, what string, fn func() error) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := d.fault.atAction("builtins", done); err != nil {
			return err
		}
		if err := fn(); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		done++
		loaded[n.Name] = what
		d.detail("builtins", fmt.Sprintf("loaded %s for %s", what, n.Name))
		return nil
	}
	// In the order the steps attach them.
	for _, r := range reals {
		err := load(r, bpf.DecapName, func() error {
			dc, err := bpf.LoadDecap(decapDsts(r))
			if err == nil {
				d.pre.put(func() { d.pre.decaps[r.Name] = dc })
			}
			return err
		})
		if err != nil {
			return "", err
		}
	}
	for _, k := range katrans {
		err := load(k, bpf.BalancerName, func() error {
			lb, err := bpf.LoadBalancer(bpf.Options{})
			if err == nil {
				d.pre.put(func() { d.pre.balancers[k.Name] = lb })
			}
			return err
		})
		if err != nil {
			return "", err
		}
	}
	if len(loaded) == 0 {
		return "nothing to load", nil
	}
	return Grouped(loaded) + " verified", nil
}

// builtinNodes are the reals and katrans of this host whose built-in
// program the builtins step loads: those that get one (not a user's own,
// not decapsulation by ipip alone) and whose container preflight did not
// find running.
func (d *deployment) builtinNodes() (reals, katrans []*topology.Node) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fresh := func(n *topology.Node) bool {
		c := d.containers[n.Name]
		return d.here(n) && n.Program == nil && (c == nil || !c.Running())
	}
	for _, r := range d.topo.NodesOfKind(topology.KindReal) {
		if fresh(r) && r.Decap != topology.DecapIPIP && len(dsrVIPs(d.topo.VIPsBackedBy(r))) > 0 {
			reals = append(reals, r)
		}
	}
	for _, k := range d.topo.NodesOfKind(topology.KindKatran) {
		if fresh(k) && len(dsrVIPs(d.topo.VIPsServedBy(k))) > 0 {
			katrans = append(katrans, k)
		}
	}
	return reals, katrans
}

// newBalancer is the balancer loaded for k by the builtins step, or one
// loaded now. The caller closes it.
func (d *deployment) newBalancer(k *topology.Node) (*bpf.Balancer, error) {
	if lb := d.pre.takeBalancer(k.Name); lb != nil {
		return lb, nil
	}
	return bpf.LoadBalancer(bpf.Options{})
}

// newDecap is the decap program loaded for r by the builtins step, or one
// loaded now. The caller closes it.
func (d *deployment) newDecap(r *topology.Node) (*bpf.Decap, error) {
	if dc := d.pre.takeDecap(r.Name); dc != nil {
		return dc, nil
	}
	return bpf.LoadDecap(decapDsts(r))
}

func (b *builtins) put(add func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	add()
}

// takeBalancer and takeDecap hand a loaded program over; nil when there
// is none (an agent's deployment has no builtins at all).
func (b *builtins) takeBalancer(node string) *bpf.Balancer {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	lb := b.balancers[node]
	delete(b.balancers, node)
	return lb
}

func (b *builtins) takeDecap(node string) *bpf.Decap {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	dc := b.decaps[node]
	delete(b.decaps, node)
	return dc
}

// decapDsts are the addresses a real's decap program accepts
// encapsulated packets for: its own.
func decapDsts(r *topology.Node) []netip.Addr {
	var dsts []netip.Addr
	for _, i := range r.Interfaces {
		for _, a := range []netip.Prefix{i.Addr, i.Addr6} {
			if a.IsValid() {
				dsts = append(dsts, a.Addr())
			}
		}
	}
	return dsts
}
