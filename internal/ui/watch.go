//go:build linux

package ui

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dsrlab/dsrlab/internal/graph"
	"github.com/dsrlab/dsrlab/internal/health"
	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/topology"
)

// Snapshot is the lab at one reading, as the page shows it.
type Snapshot struct {
	Time time.Time `json:"time"`
	Lab  string    `json:"lab"`
	// Up: at least one of the lab's containers runs.
	Up        bool           `json:"up"`
	Status    string         `json:"status"`
	Nodes     []NodeView     `json:"nodes"`
	Links     []LinkView     `json:"links"`
	Balancers []BalancerView `json:"balancers"`
}

// NodeView is one node: its container's state and its XDP programs.
type NodeView struct {
	Name     string              `json:"name"`
	State    string              `json:"state"`
	Error    string              `json:"error,omitempty"`
	Programs []lab.ProgramReport `json:"programs"`
}

// LinkView is one link of the scene ("node:iface" ends, as graph names
// them), what keeps it from passing packets if anything, and its traffic
// each way.
type LinkView struct {
	A     string `json:"a"`
	B     string `json:"b"`
	State string `json:"state,omitempty"`
	AtoB  Rate   `json:"a_to_b"`
	BtoA  Rate   `json:"b_to_a"`
}

// Rate is a direction's traffic since the reading before, and its totals.
type Rate struct {
	PPS     float64 `json:"pps"`
	BPS     float64 `json:"bps"`
	Packets uint64  `json:"packets"`
	Bytes   uint64  `json:"bytes"`
}

// LogEntry is one change the server saw, for the page's live log.
type LogEntry struct {
	Time time.Time `json:"time"`
	Text string    `json:"text"`
}

// event is one Server-Sent Event.
type event struct {
	name string
	data []byte
}

// inspectEvery: programs and the balancers' maps change only with up and
// `dsrlab real`; they are read every few readings, and when a container
// changes state.
const inspectEvery = 5

// logKeep is how many log entries a page that connects is sent.
const logKeep = 200

// watcher reads the lab every interval and hands each reading to the
// pages that listen.
type watcher struct {
	cfg *Config

	// mu guards what pages read: ready to subs, and last's writes.
	mu    sync.Mutex
	ready chan struct{} // closed after the first reading
	scene []byte        // JSON of the scene drawn from the recorded topology
	state []byte        // JSON of the last Snapshot
	last  *Snapshot
	log   []LogEntry
	subs  map[chan event]struct{}
	// The rest is the reading goroutine's own.
	ticks  int
	before map[string]counterSample // by node:iface
	reals  map[string]counterSample // balancer's per-real counters, by "node real-addr"
	report map[string]*lab.NodeReport
	stats  map[string]lab.BalancerStats
	routes []lab.RouterRoutes
	// health is each checked real's last status seen, and healthLog the
	// transitions seen since the last reading's log.
	health    map[health.Key]health.Status
	healthLog []string
}

// counterSample is a packet and byte count at one reading.
type counterSample struct {
	at             time.Time
	packets, bytes uint64
	present        bool
}

func newWatcher(cfg *Config) *watcher {
	return &watcher{cfg: cfg, ready: make(chan struct{}), subs: map[chan event]struct{}{},
		before: map[string]counterSample{}, reals: map[string]counterSample{}, health: map[health.Key]health.Status{}}
}

func (w *watcher) run(ctx context.Context) {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		w.read(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// read takes one reading and sends what changed to every page.
func (w *watcher) read(ctx context.Context) {
	snap, topo := w.snapshot(ctx)
	var events []event
	w.mu.Lock()
	if topo != nil {
		sc, _ := json.Marshal(graph.Layout(topo))
		if string(sc) != string(w.scene) {
			if w.scene != nil {
				w.logf(snap.Time, &events, "the lab's topology changed (brought up again): drawing it anew")
			}
			// Its reals' health starts anew with it, not as transitions.
			clear(w.health)
			w.healthLog = nil
			w.scene = sc
			events = append(events, event{"scene", sc})
		}
	}
	w.diff(snap, &events)
	data, _ := json.Marshal(snap)
	w.state, w.last = data, snap
	events = append(events, event{"state", data})
	select {
	case <-w.ready:
	default:
		close(w.ready)
	}
	w.send(events)
	w.mu.Unlock()
}

// send hands events to every page; w.mu is held. A page that cannot keep
// up misses them and gets the next reading.
func (w *watcher) send(events []event) {
	for ch := range w.subs {
		for _, ev := range events {
			select {
			case ch <- ev:
			default:
			}
		}
	}
}

// note logs something the server did (a trace), for every page.
func (w *watcher) note(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var events []event
	w.logf(time.Now(), &events, format, args...)
	w.send(events)
}

// logf adds an entry to the log and to the events being sent.
func (w *watcher) logf(at time.Time, events *[]event, format string, args ...any) {
	e := LogEntry{Time: at, Text: fmt.Sprintf(format, args...)}
	w.log = append(w.log, e)
	if len(w.log) > logKeep {
		w.log = w.log[len(w.log)-logKeep:]
	}
	data, _ := json.Marshal(e)
	*events = append(*events, event{"log", data})
}

// diff logs what changed since the last reading: the lab coming up or
// going down, a container's state, a link's.
func (w *watcher) diff(s *Snapshot, events *[]event) {
	old := w.last
	if old == nil {
		w.logf(s.Time, events, "watching lab %s: %s", s.Lab, s.Status)
		return
	}
	if old.Up != s.Up || old.Status != s.Status && !strings.HasPrefix(s.Status, "up") {
		w.logf(s.Time, events, "lab %s", s.Status)
	}
	for _, line := range w.healthLog {
		w.logf(s.Time, events, "%s", line)
	}
	w.healthLog = nil
	was := map[string]string{}
	for _, n := range old.Nodes {
		was[n.Name] = n.State
	}
	for _, n := range s.Nodes {
		if p, ok := was[n.Name]; ok && p != n.State {
			w.logf(s.Time, events, "node %s: %s → %s", n.Name, p, n.State)
		}
	}
	links := map[string]string{}
	for _, l := range old.Links {
		links[l.A+" — "+l.B] = l.State
	}
	for _, l := range s.Links {
		k := l.A + " — " + l.B
		if p, ok := links[k]; ok && p != l.State {
			w.logf(s.Time, events, "link %s: %s → %s", k, cmp.Or(p, "up"), cmp.Or(l.State, "up"))
		}
	}
}

// snapshot reads the lab: its recorded topology (gone after `dsrlab
// down`), the state and counters of every node, and now and then the
// programs and balancers. It returns the topology read, nil if none.
func (w *watcher) snapshot(ctx context.Context) (*Snapshot, *topology.Topology) {
	now := time.Now()
	s := &Snapshot{Time: now, Lab: w.cfg.Lab, Nodes: []NodeView{}, Links: []LinkView{}, Balancers: []BalancerView{}}
	topo, err := lab.LoadState(w.cfg.Lab)
	if err != nil {
		s.Status = "down: no recorded topology (`dsrlab up` brings it up)"
		return s, nil
	}
	counters, err := lab.Counters(ctx, w.cfg.Engines, topo)
	if err != nil {
		s.Status = "unreachable: " + err.Error()
		return s, topo
	}
	byIface := map[string]netconf.Counters{}
	running := map[string]bool{}
	changed := false
	for _, nc := range counters {
		s.Nodes = append(s.Nodes, NodeView{Name: nc.Node, State: nc.State, Error: nc.Error, Programs: []lab.ProgramReport{}})
		if nc.State == "running" {
			running[nc.Node] = true
			s.Up = true
		}
		if w.last != nil && !slices.ContainsFunc(w.last.Nodes, func(o NodeView) bool { return o.Name == nc.Node && o.State == nc.State }) {
			changed = true
		}
		for _, c := range nc.Interfaces {
			byIface[nc.Node+":"+c.Name] = c
		}
	}
	s.Status = status(s.Nodes)
	w.links(s, topo, byIface, running, now)
	if !s.Up {
		w.report, w.stats, w.routes = nil, nil, nil
		clear(w.health)
		return s, topo
	}
	if w.report == nil || changed || w.ticks%inspectEvery == 0 {
		w.inspect(ctx)
	}
	w.ticks++
	w.readStats(ctx, topo)
	// A router that is not running has no routes to read; the others'
	// are read again next time.
	if w.routes, err = lab.Routes(ctx, w.cfg.Engines, topo); err != nil {
		w.routes = nil
	}
	for i := range s.Nodes {
		if nr := w.report[s.Nodes[i].Name]; nr != nil && nr.Programs != nil {
			s.Nodes[i].Programs = nr.Programs
		}
	}
	s.Balancers = w.balancers(topo, now)
	return s, topo
}

// status sums the nodes' states up in a line.
func status(nodes []NodeView) string {
	var notRunning []string
	for _, n := range nodes {
		if n.State != "running" {
			notRunning = append(notRunning, n.Name+" "+n.State)
		}
	}
	switch {
	case len(notRunning) == 0:
		return "up"
	case len(notRunning) == len(nodes):
		return "down: no container runs (" + strings.Join(notRunning, ", ") + ")"
	}
	return "degraded: " + strings.Join(notRunning, ", ")
}

// links fills the links' states and rates. A direction's traffic is what
// the sending end transmitted; when that end has no counters (its
// container is gone), what the other end received.
func (w *watcher) links(s *Snapshot, topo *topology.Topology, byIface map[string]netconf.Counters, running map[string]bool, now time.Time) {
	state := func(ifc *topology.Interface) string {
		c, ok := byIface[ifc.String()]
		switch {
		case !running[ifc.Node.Name]:
			return ifc.Node.Name + " not running"
		case !ok:
			return ifc.String() + " " + netconf.LinkMissing
		case c.State != "":
			return ifc.String() + " " + c.State
		}
		return ""
	}
	for _, l := range topo.Links {
		lv := LinkView{A: l.A.String(), B: l.B.String()}
		var why []string
		for _, st := range []string{state(l.A), state(l.B)} {
			if st != "" {
				why = append(why, st)
			}
		}
		lv.State = strings.Join(why, ", ")
		lv.AtoB = w.rate(l.A, l.B, byIface, now)
		lv.BtoA = w.rate(l.B, l.A, byIface, now)
		s.Links = append(s.Links, lv)
	}
}

// rate is the traffic from one end of a link to the other since the last
// reading. A counter that went back (a veth made anew by up) starts over.
func (w *watcher) rate(from, to *topology.Interface, byIface map[string]netconf.Counters, now time.Time) Rate {
	key := from.String() + ">" + to.String()
	cur := counterSample{at: now}
	if c, ok := byIface[from.String()]; ok {
		cur.packets, cur.bytes, cur.present = c.TxPackets, c.TxBytes, true
	} else if c, ok := byIface[to.String()]; ok {
		cur.packets, cur.bytes, cur.present = c.RxPackets, c.RxBytes, true
	}
	prev, had := w.before[key]
	w.before[key] = cur
	r := Rate{Packets: cur.packets, Bytes: cur.bytes}
	if had && prev.present && cur.present {
		r.PPS, r.BPS = perSecond(prev, cur)
	}
	return r
}

// perSecond is the packets and bits per second between two samples, 0
// where a counter went back.
func perSecond(prev, cur counterSample) (pps, bps float64) {
	dt := cur.at.Sub(prev.at).Seconds()
	if dt <= 0 || cur.packets < prev.packets || cur.bytes < prev.bytes {
		return 0, 0
	}
	return float64(cur.packets-prev.packets) / dt, float64(cur.bytes-prev.bytes) * 8 / dt
}

// inspect reads every node's programs and balancers. A failure keeps the
// last reading: the counters still tell what matters.
func (w *watcher) inspect(ctx context.Context) {
	rep, err := lab.Inspect(ctx, w.cfg.Engines, w.cfg.Lab)
	if err != nil {
		return
	}
	w.report = map[string]*lab.NodeReport{}
	for i := range rep.Nodes {
		w.report[rep.Nodes[i].Node] = &rep.Nodes[i]
	}
}

// readStats reads the balancers' counters, when the lab has dsrlab's
// balancers.
func (w *watcher) readStats(ctx context.Context, topo *topology.Topology) {
	stats, err := lab.Stats(ctx, w.cfg.Engines, topo)
	if err != nil {
		w.stats = nil
		return
	}
	w.stats = map[string]lab.BalancerStats{}
	for _, s := range stats {
		w.stats[s.Node] = s
	}
	w.healthLog = append(w.healthLog, healthChanges(w.health, stats)...)
}

// healthChanges are the transitions of the reals' health since seen,
// which it updates; a real seen for the first time is no transition.
func healthChanges(seen map[health.Key]health.Status, stats []lab.BalancerStats) []string {
	var out []string
	for _, s := range stats {
		for _, r := range s.Health {
			if was, ok := seen[r.Key]; ok && was != r.Status {
				out = append(out, fmt.Sprintf("health: %s on %s (%s): %s → %s (%s)", r.Real, r.Katran, r.VIP, was, r.Status, r.LastResult))
			}
			seen[r.Key] = r.Status
		}
	}
	return out
}

// subscribe returns a channel of every event from now on, and what a page
// needs first: the scene, the last reading and the log so far.
func (w *watcher) subscribe(ctx context.Context) (chan event, []event, error) {
	select {
	case <-w.ready:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	ch := make(chan event, 16)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.subs[ch] = struct{}{}
	var first []event
	if w.scene != nil {
		first = append(first, event{"scene", w.scene})
	}
	first = append(first, event{"state", w.state})
	for _, e := range w.log {
		data, _ := json.Marshal(e)
		first = append(first, event{"log", data})
	}
	return ch, first, nil
}

func (w *watcher) unsubscribe(ch chan event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.subs, ch)
}

// current returns the JSON of the scene and of the last reading, after the
// first reading.
func (w *watcher) current(ctx context.Context) (scene, state []byte, err error) {
	select {
	case <-w.ready:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.scene, w.state, nil
}
