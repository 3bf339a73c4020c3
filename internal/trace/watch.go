//go:build linux

package trace

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dsrlab/dsrlab/internal/capture"
	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/topology"
)

// hostWatch is one host's part of a trace: a watch in this process, or
// the same watch in dsrlab's agent on another host (remoteWatch).
type hostWatch interface {
	// probe runs the probe from the client, whose namespace the watch
	// holds.
	probe(ctx context.Context, r probeRequest) (probeResult, error)
	// stop ends the watch settle after the probe, and reports what it saw
	// of the flow.
	stop(ctx context.Context, f flowRef) (*hostReport, error)
	close()
}

// settle is how long a watch goes on after the probe ended: the last
// acknowledgements, ICMP errors and drop reports are still on their way
// then.
const settle = 300 * time.Millisecond

// watch captures on every interface of one host's nodes, and watches the
// kernel's drops in their namespaces, from startWatch to stop.
type watch struct {
	topo    *topology.Topology
	host    string
	nss     map[string]*netconf.Namespace // by node name
	sources []capture.Source              // by capture interface index
	c       *capture.Capture
	drops   *dropWatch
	// dropsOff says why drops are not watched, if they are not.
	dropsOff string
	// notUp names the interfaces found not up ("node:iface state"), at
	// the start or during the watch; a missing one is not captured on.
	notUp  []string
	cancel context.CancelFunc
	done   chan struct{}
	pkts   []capture.Packet
	err    error
}

// startWatch starts watching host's nodes in their namespaces, by node
// name, which it closes when it is closed (or fails). On return, every
// socket and the tracer are in place.
func startWatch(ctx context.Context, t *topology.Topology, host string, nss map[string]*netconf.Namespace) (_ *watch, err error) {
	w := &watch{topo: t, host: host, nss: nss}
	// saidDown marks the capture interfaces said to be down, at the
	// start or since: once is enough.
	saidDown := map[int]bool{}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	for _, n := range t.Nodes {
		if n.Host.Name != host {
			continue
		}
		ns := nss[n.Name]
		if ns == nil {
			return nil, fmt.Errorf("node %s: no namespace to watch", n.Name)
		}
		for _, ifc := range n.Interfaces {
			// A link that is not up may be why the flow fails: it is
			// a finding, not a reason to give up the trace.
			state, err := ns.LinkState(ifc.Name)
			if err != nil {
				return nil, err
			}
			if state != "" {
				w.notUp = append(w.notUp, fmt.Sprintf("%s:%s %s", n.Name, ifc.Name, state))
			}
			if state != netconf.LinkMissing {
				saidDown[len(w.sources)] = state == netconf.LinkDown
				w.sources = append(w.sources, capture.Source{Node: n.Name, Iface: ifc.Name, NS: ns})
			}
		}
	}
	if len(w.sources) == 0 {
		return nil, fmt.Errorf("host %s: no interface of the lab's nodes exists to watch (%s)", host, strings.Join(w.notUp, ", "))
	}
	if w.c, err = capture.Open(w.sources, "ip or ip6"); err != nil {
		return nil, err
	}
	w.c.OnDown(func(i int) {
		if !saidDown[i] {
			saidDown[i] = true
			w.notUp = append(w.notUp, fmt.Sprintf("%s:%s went down", w.sources[i].Node, w.sources[i].Iface))
		}
	})
	if w.drops, err = watchDrops(nss); err != nil {
		w.drops, w.dropsOff = nil, err.Error()
	}
	ctx, w.cancel = context.WithCancel(ctx)
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		w.err = w.c.Run(ctx, 0, func(p capture.Packet) error {
			w.pkts = append(w.pkts, p)
			return nil
		})
	}()
	return w, nil
}

func (w *watch) probe(ctx context.Context, r probeRequest) (probeResult, error) {
	ns := w.nss[r.Client]
	if ns == nil {
		return probeResult{}, fmt.Errorf("node %s is not watched on host %s", r.Client, w.host)
	}
	ex, err := lab.Probe(ctx, ns, r.Dst, r.Proto, probePayload)
	res := probeResult{Answer: ex.Answer, From: ex.From, Local: ex.Local}
	if err != nil {
		res.Err = err.Error()
	}
	return res, nil
}

func (w *watch) stop(ctx context.Context, ref flowRef) (*hostReport, error) {
	f, err := ref.flow(w.topo)
	if err != nil {
		return nil, err
	}
	select {
	case <-time.After(settle):
	case <-ctx.Done():
	}
	w.cancel()
	<-w.done
	if w.err != nil {
		return nil, w.err
	}
	rep := &hostReport{Host: w.host, DropsOff: w.dropsOff, NotUp: w.notUp}
	if w.drops != nil {
		rep.Drops, w.drops = w.drops.stop(), nil
	}
	ifaces := w.c.Interfaces()
	for _, p := range w.pkts {
		src := w.sources[p.Iface]
		rep.Packets = append(rep.Packets, sighting{Time: p.Time, Node: src.Node, Iface: src.Iface, Dir: p.Dir,
			Length: p.Length, Link: ifaces[p.Iface].LinkType, Data: p.Data})
	}
	f.keep(rep)
	return rep, nil
}

// close releases the sockets, the tracer and the namespaces; the
// tracer's links and maps go on every path out, read or not.
func (w *watch) close() {
	if w.cancel != nil {
		w.cancel()
		<-w.done
	}
	if w.c != nil {
		w.c.Close()
	}
	if w.drops != nil {
		w.drops.close()
		w.drops = nil
	}
	closeAll(w.nss)
	w.nss = nil
}

func closeAll(nss map[string]*netconf.Namespace) {
	for _, ns := range nss {
		ns.Close()
	}
}
