package lab

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dsrlab/dsrlab/internal/health"
	"github.com/dsrlab/dsrlab/internal/image"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// Controller checks the reals of a running lab from each of its katrans
// and takes a real that fails out of that katran's ring (and puts it back
// when it passes again). Its desired state is the lab's recorded topology,
// read again whenever up records a new one; what it finds is written to
// health.json and events.jsonl beside it, so a controller restarted after
// a crash goes on where the last one stopped, and nothing lives only in
// its memory.
type Controller struct {
	Lab string
	// Host is the host whose katrans it checks: each host of a lab has a
	// controller of its own (another host's runs in dsrlab's agent
	// there), as separate machines would.
	Host string
	// Namespace opens a katran's network namespace: through the
	// namespace's name in the controller's container (NamespaceByName),
	// the namespaces the agent recorded on another host
	// (RecordedNamespaces), or the fake runtime's handle in tests.
	Namespace func(n *topology.Node) (*netconf.Namespace, error)
	// Log receives a line per transition and problem.
	Log io.Writer
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	dir        string
	topo       *topology.Topology
	topoStamp  time.Time
	sched      *health.Scheduler
	targets    map[health.Key]health.Target
	namespaces map[string]*netconf.Namespace
	failOpen   map[health.FailOpen]bool
	// pending are the VIPs, by katran, whose weights a transition
	// changed and that wait for the lab's lock to be written.
	pending map[vipOn]bool
}

type vipOn struct {
	katran string
	vip    *topology.VIP
}

// controllerTick is how often the controller looks for due checks and a
// new recorded topology: well under the shortest check interval.
const controllerTick = 50 * time.Millisecond

type checkResult struct {
	key     health.Key
	at      time.Time
	latency time.Duration
	err     error
}

// Run checks until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Host == "" {
		c.Host = topology.LocalHost
	}
	// The name becomes a path under the state directory.
	if err := topology.ValidLabName(c.Lab); err != nil {
		return err
	}
	c.dir = labDir(c.Lab)
	// Another host's agent has no state before up's first request.
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	// A file it cannot read is no reason to stop: on another host the
	// controller is the agent's main process, and every command that
	// reaches that host needs the agent running. It checks afresh.
	recorded, err := health.ReadState(c.dir)
	if err != nil {
		c.logf("%v: starting with no health known", err)
	}
	c.sched = health.NewScheduler(recorded.Reals)
	c.failOpen = map[health.FailOpen]bool{}
	for _, fo := range recorded.FailOpen {
		c.failOpen[fo] = true
	}
	c.namespaces = map[string]*netconf.Namespace{}
	c.pending = map[vipOn]bool{}
	defer c.closeNamespaces()
	c.event(health.Event{Type: "controller", Result: "started"})

	results := make(chan checkResult)
	inflight := map[health.Key]bool{}
	tick := time.NewTicker(controllerTick)
	defer tick.Stop()
	dirty := true
	lastErr := ""
	for {
		// Said once, not at every tick while it lasts.
		if err := c.sync(); err != nil && err.Error() != lastErr {
			lastErr = err.Error()
			c.logf("%v", err)
		} else if err == nil {
			lastErr = ""
		}
		now := c.Now()
		for _, k := range c.sched.Due(now) {
			tg, ok := c.targets[k]
			if !ok || inflight[k] {
				continue
			}
			ns, err := c.namespace(k.Katran)
			if err == nil {
				// The check's own handle: a new topology closes the
				// controller's while checks are still running.
				ns, err = ns.Clone()
			}
			if err != nil {
				c.record(k, now, 0, err)
				dirty = true
				continue
			}
			inflight[k] = true
			go func() {
				defer ns.Close()
				start := c.Now()
				latency, err := health.Run(ctx, ns.DialMarked, tg)
				select {
				case results <- checkResult{k, start.Add(latency), latency, err}:
				case <-ctx.Done():
				}
			}()
		}
		if dirty {
			if err := c.writeState(); err != nil {
				c.logf("%v", err)
			}
			dirty = false
		}
		select {
		case <-ctx.Done():
			return nil
		case r := <-results:
			delete(inflight, r.key)
			c.record(r.key, r.at, r.latency, r.err)
			dirty = true
		case <-tick.C:
		}
	}
}

// record takes a check's result and, on a transition, says so and has
// the weights of the real's VIP on its katran set.
func (c *Controller) record(k health.Key, at time.Time, latency time.Duration, err error) {
	tr := c.sched.Record(k, at, latency, err)
	if tr == nil {
		return
	}
	c.logf("%s on %s: %s %s -> %s (%s)", k.Real, k.Katran, k.VIP, tr.From, tr.To, tr.Result)
	c.event(health.Event{Time: tr.At, Type: "health", VIP: k.VIP, Katran: k.Katran, Real: k.Real, From: tr.From, To: tr.To, Result: tr.Result})
	c.pending[vipOn{k.Katran, c.targets[k].VIP}] = true
}

// sync follows a new recorded topology and writes the weights that
// transitions changed, holding the lab's lock: a dsrlab process that
// changes the lab (up, real drain, recover) writes the balancers' maps
// before it records the topology they follow, and weights computed from
// the record it replaces would undo its work. While one holds the lock,
// the weights wait for the next tick.
func (c *Controller) sync() error {
	changed, err := c.recordChanged()
	if err != nil || !changed && len(c.pending) == 0 {
		return err
	}
	unlock, err := tryLock(c.Lab)
	if err != nil || unlock == nil {
		return err
	}
	defer unlock()
	if changed, err = c.recordChanged(); err != nil {
		return err
	}
	if changed {
		// reload sets every weight.
		clear(c.pending)
		return c.reload()
	}
	var errs []error
	for p := range c.pending {
		if err := c.applyWeights(p.katran, p.vip); err != nil {
			// Tried again at the next tick: dropped, the weights would
			// wait for the real's next transition.
			errs = append(errs, err)
			continue
		}
		delete(c.pending, p)
	}
	return errors.Join(errs...)
}

// recordChanged tells whether up recorded a topology the controller does
// not follow yet.
func (c *Controller) recordChanged() (bool, error) {
	info, err := os.Stat(stateFile(c.Lab))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // up records the topology last: nothing to check yet
	}
	if err != nil {
		return false, fmt.Errorf("lab %s: %w", c.Lab, err)
	}
	return c.topo == nil || !info.ModTime().Equal(c.topoStamp), nil
}

// reload reads the recorded topology and makes the checks and every
// katran's weights follow it.
func (c *Controller) reload() error {
	info, err := os.Stat(stateFile(c.Lab))
	if err != nil {
		return fmt.Errorf("lab %s: %w", c.Lab, err)
	}
	topo, err := LoadState(c.Lab)
	if err != nil {
		return err
	}
	c.topo, c.topoStamp = topo, info.ModTime()
	// A katran recreated by up has a namespace of its own again.
	c.closeNamespaces()
	c.targets = map[health.Key]health.Target{}
	policies := map[health.Key]health.Policy{}
	for _, k := range topo.NodesOfKind(topology.KindKatran) {
		if k.Host.Name != c.Host {
			continue // the controller of its own host checks from it
		}
		for _, tg := range health.Targets(topo, k) {
			key := health.Key{VIP: tg.VIP.String(), Katran: k.Name, Real: tg.Real.Name}
			c.targets[key] = tg
			hc := tg.VIP.HealthCheck
			policies[key] = health.Policy{Interval: hc.Interval, Fall: hc.Fall, Rise: hc.Rise}
		}
	}
	c.sched.SetTargets(c.Now(), policies)
	// Reals no longer checked leave health.json now, not at the next
	// result, which a lab without checks never has.
	if err := c.writeState(); err != nil {
		return err
	}
	// Whatever a crashed controller or an up left, the weights are set
	// from the health known now.
	var errs []error
	for _, k := range topo.NodesOfKind(topology.KindKatran) {
		for _, v := range topo.VIPsServedBy(k) {
			if v.HealthCheck != nil && k.Host.Name == c.Host && !v.NAT() {
				if err := c.applyWeights(k.Name, v); err != nil {
					c.pending[vipOn{k.Name, v}] = true // tried again at the next tick
					errs = append(errs, err)
				}
			}
		}
	}
	c.logf("following %s: %d checks", stateFile(c.Lab), len(c.targets))
	return errors.Join(errs...)
}

// applyWeights gives v's reals on katran their effective weights, and
// says loudly when the katran fails open.
func (c *Controller) applyWeights(katran string, v *topology.VIP) error {
	k := c.topo.Node(katran)
	ns, err := c.namespace(katran)
	if err != nil {
		return err
	}
	up := k.Uplink()
	lb, _, err := openBalancer(ns, up.Name)
	if err != nil || lb == nil {
		return errors.Join(fmt.Errorf("node %s: no balancer to set the weights of %s in", katran, v), err)
	}
	defer lb.Close()
	current, err := lb.VIPs()
	if err != nil {
		return err
	}
	reals, failOpen := vipReals(up, v, health.State{Reals: c.sched.Reals()})
	key := bpfVIP(v)
	if have, ok := current[key]; !ok || !sameReals(have, reals) {
		if err := lb.SetVIP(key, reals); err != nil {
			return fmt.Errorf("node %s: VIP %s: %w", katran, v, err)
		}
	}
	fo := health.FailOpen{VIP: v.String(), Katran: katran}
	switch {
	case failOpen && !c.failOpen[fo]:
		c.failOpen[fo] = true
		c.logf("FAIL OPEN: every real of %s is down on %s; keeping them all", v, katran)
		c.event(health.Event{Type: "fail-open", VIP: fo.VIP, Katran: katran, Result: "every real is down: all kept in the ring"})
	case !failOpen && c.failOpen[fo]:
		delete(c.failOpen, fo)
		c.logf("%s on %s no longer fails open", v, katran)
		c.event(health.Event{Type: "fail-open-end", VIP: fo.VIP, Katran: katran, Result: "a real is up again"})
	}
	return nil
}

func (c *Controller) namespace(katran string) (*netconf.Namespace, error) {
	if ns := c.namespaces[katran]; ns != nil {
		return ns, nil
	}
	ns, err := c.Namespace(c.topo.Node(katran))
	if err != nil {
		return nil, err
	}
	c.namespaces[katran] = ns
	return ns, nil
}

func (c *Controller) closeNamespaces() {
	for k, ns := range c.namespaces {
		ns.Close()
		delete(c.namespaces, k)
	}
}

func (c *Controller) writeState() error {
	st := health.State{Updated: c.Now(), Reals: c.sched.Reals()}
	for fo := range c.failOpen {
		st.FailOpen = append(st.FailOpen, fo)
	}
	slices.SortFunc(st.FailOpen, func(a, b health.FailOpen) int {
		return cmp.Or(cmp.Compare(a.VIP, b.VIP), cmp.Compare(a.Katran, b.Katran))
	})
	return health.WriteState(c.dir, st)
}

func (c *Controller) event(e health.Event) {
	if e.Time.IsZero() {
		e.Time = c.Now()
	}
	e.Lab, e.Host = c.Lab, c.Host
	if err := health.AppendEvent(c.dir, e); err != nil {
		c.logf("%v", err)
	}
}

func (c *Controller) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, c.Now().UTC().Format(time.RFC3339Nano)+" "+format+"\n", args...)
	}
}

// roleController labels the controller's container.
const roleController = "controller"

func controllerName(t *topology.Topology) string { return t.Prefix + "dsrlab-controller" }

// controllerCommand is the main process of the controller container on
// host: on another host, dsrlab's agent there.
func controllerCommand(lab, host string) []string {
	return []string{image.BinaryPath, "controller", "--lab", lab, "--host", host}
}

// startController runs the lab's controller when it has checks: a
// container of the node image in the host's network and PID namespaces
// (it enters the katrans' namespaces through /run/netns), with the lab's
// state directory mounted, restarted by the engine if it crashes. One that
// runs is left running: it follows the topology this up records. A lab
// whose checks are gone loses its controller.
func (d *deployment) startController(ctx context.Context) (string, error) {
	checks := checksOn(d.topo, topology.LocalHost)
	rt := d.rts[topology.LocalHost]
	remove := func(c *runtime.Container) error {
		if err := rt.Remove(ctx, c.ID); err != nil {
			return fmt.Errorf("remove controller: %w", err)
		}
		d.controller = nil
		d.change("controller", "removed "+c.Name)
		return nil
	}
	if !checks {
		if c := d.controller; c != nil {
			if err := remove(c); err != nil {
				return "", err
			}
			// Health found under checks that are gone would hold reals
			// down when checks come back, before any check ran.
			if err := os.Remove(filepath.Join(labDir(d.topo.Name), health.StateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("state: %w", err)
			}
			return "removed: no checks", nil
		}
		return "no checks", nil
	}
	// A controller runs the dsrlab of its image, like an agent; the
	// image is dsrlab's own build where the engine builds it (not in the
	// fake runtime, which runs the controller in-process).
	digest := ""
	if _, ok := rt.(runtime.ImageBuilder); ok {
		var err error
		if digest, err = image.Digest(); err != nil {
			return "", err
		}
	}
	if c := d.controller; c != nil && c.Labels[image.DigestLabel] != digest {
		if err := remove(c); err != nil {
			return "", err
		}
	}
	if c := d.controller; c != nil && c.Running() {
		return c.Name + " running", nil
	}
	sctx, err := seeThrough(ctx)
	if err != nil {
		return "", err
	}
	if c := d.controller; c != nil {
		if _, err := rt.Start(sctx, c.ID); err != nil {
			return "", fmt.Errorf("controller: %w", err)
		}
		d.change("controller", "started "+c.Name)
		return c.Name + " started", nil
	}
	// The engine mounts absolute paths only.
	root, err := filepath.Abs(stateRoot())
	if err != nil {
		return "", fmt.Errorf("state: %w", err)
	}
	names, err := filepath.Abs(netnsDir())
	if err != nil {
		return "", fmt.Errorf("namespace names: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(root, d.topo.Name), 0o755); err != nil {
		return "", fmt.Errorf("state: %w", err)
	}
	c, adopted, err := runOrAdopt(ctx, sctx, rt, runtime.ContainerSpec{
		Name: controllerName(d.topo), Hostname: "dsrlab-controller", Image: topology.DefaultImage,
		Cmd: controllerCommand(d.topo.Name, topology.LocalHost),
		Env: map[string]string{"DSRLAB_STATE_DIR": root, "DSRLAB_NETNS_DIR": names},
		Labels: map[string]string{LabelLab: d.topo.Name, LabelRole: roleController, LabelHost: topology.LocalHost,
			LabelTopology: d.topo.File, image.DigestLabel: digest},
		CapAdd: agentCaps, HostNetwork: true, HostPID: true,
		// The state root, not only the lab's directory: the lab's lock
		// sits beside it.
		Binds:         []string{root + ":" + root, names + ":" + names + ":ro"},
		RestartPolicy: "unless-stopped",
	})
	if err != nil {
		return "", fmt.Errorf("controller: %w", err)
	}
	d.controller = c
	d.change("controller", createdOr(adopted)+" "+c.Name)
	return c.Name + " " + createdOr(adopted), nil
}

// checksOn tells whether a katran on host checks reals, which the
// controller there does.
func checksOn(t *topology.Topology, host string) bool {
	for _, k := range t.NodesOfKind(topology.KindKatran) {
		if k.Host.Name == host && len(health.Targets(t, k)) > 0 {
			return true
		}
	}
	return false
}

// NamespaceByName opens a node's network namespace through the name up
// gave it in /run/netns, as the controller does from its container.
func NamespaceByName(n *topology.Node) (*netconf.Namespace, error) {
	return netconf.FromPath(filepath.Join(netnsDir(), n.ContainerName), n.ContainerName)
}
