package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dsrlab/dsrlab/internal/health"
	"github.com/dsrlab/dsrlab/internal/image"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// nodeCaps are the only capabilities containers get: enough for a user to
// run ip and ping inside. Everything dsrlab configures it does from the host,
// and privileged containers cannot start on every host.
var nodeCaps = []string{"NET_ADMIN", "NET_RAW"}

// keepalive keeps a container running when its node has no cmd, with any
// POSIX sh, and exits at once on SIGTERM (a plain sleep as PID 1 would not).
var keepalive = []string{"/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"}

// Up makes the lab match the topology. On a lab that is not up it creates
// everything; on one that is up it checks every piece and redoes only what
// is missing (a restarted container's links, a real's changed weight), so
// running it twice changes nothing. If a step fails, what this run created
// is removed again and the error names the step.
//
// rts holds the engine of every host the lab's nodes run on. What happens
// inside another host's namespaces is done there, by dsrlab's agent.
func Up(ctx context.Context, rts runtime.Set, topo *topology.Topology, rep Reporter) (sum *Summary, err error) {
	start := time.Now()
	flt, err := faultFromEnv()
	if err != nil {
		return nil, err
	}
	d := &deployment{
		topo: topo, rts: rts, host: topology.LocalHost, rep: rep, fault: flt,
		agents:      map[string]*runtime.Container{},
		containers:  map[string]*runtime.Container{},
		created:     map[string]bool{},
		preexisting: map[string]bool{},
		ns:          map[string]*netconf.Namespace{},
		programs:    map[string]*userProgram{},
		tc:          map[string]*userProgram{},
		pre:         newBuiltins(),
		sum:         &Summary{Lab: topo.Name, XDP: map[string]string{}, NAT: map[string]string{}, Decap: map[string]string{}},
	}
	defer d.closeNamespaces()
	defer d.closePrograms()
	defer d.pre.close()
	// A lab with no record is new: if this run fails, it must leave no
	// record either (up records the hosts before it creates anything),
	// unless containers of the lab were there before it (labelled, with
	// their record lost) and stay: down needs the record to find them.
	recorded, err := Recorded(topo.Name)
	if err != nil {
		return nil, err
	}
	// The creating mark goes when this run returns, after the rollback
	// below (whose removals are this run's requests too), unless an up that
	// died left it and this run failed: that up's creates may still land,
	// and a down must still watch for them.
	_, markErr := os.Stat(creatingFile(topo.Name))
	defer func() {
		if err == nil || markErr != nil {
			os.Remove(creatingFile(topo.Name))
		}
	}()
	defer func() {
		if err == nil {
			return
		}
		if d.rollback() && !recorded && len(d.preexisting) == 0 {
			if rerr := removeState(topo.Name); rerr != nil {
				rep.Note("rollback: " + rerr.Error())
			}
		}
	}()
	steps := []step{
		// Users' programs are compiled, loaded and their maps filled
		// before any engine is asked or anything recorded: a compile
		// error, a bad map value or a verifier rejection leaves nothing
		// behind, not even the lab's record of its hosts.
		{name: "programs", fn: d.buildPrograms},
		{name: "preflight", fn: d.preflight},
		// dsrlab's own programs need no container until they are
		// attached: the kernel verifies them while the engine starts
		// the containers.
		{name: "builtins", fn: d.loadBuiltins, until: "decap"},
		{name: "images", fn: d.images},
		{name: "agents", fn: d.agentsStep},
		{name: "containers", fn: d.startContainers},
		{name: "links", fn: d.createLinks},
		{name: "addressing", fn: d.address},
		// Reals are made ready (decap, services) before any balancer sends
		// them traffic, so a real added to a running lab never receives a
		// flow it cannot take.
		{name: "decap", fn: d.decap},
		{name: "services", fn: d.services},
		{name: "hosts", fn: d.remotePhase(phaseReals)},
		{name: "xdp", fn: d.loadBalancers},
		{name: "tc", fn: d.attachTCPrograms},
		{name: "nat", fn: d.natBalancers},
		{name: "healthcheck", fn: d.healthChecks},
		{name: "controller", fn: d.startController},
		{name: "hosts-xdp", fn: d.remotePhase(phaseBalancers)},
		// The routers learn the VIPs once the balancers are attached:
		// up returns when every VIP is routed over each of its katrans.
		{name: "bgp", fn: d.bgpRoutes},
		{name: "exec", fn: d.execs},
	}

	if err := d.runSteps(ctx, steps); err != nil {
		return nil, err
	}
	// Recorded only now: a failed run leaves the previous record, which
	// still describes what the lab was built from.
	if err := saveState(d.topo); err != nil {
		return nil, err
	}
	d.sum.Elapsed = time.Since(start)
	return d.sum, nil
}

type deployment struct {
	topo *topology.Topology
	rts  runtime.Set
	// host is where this deployment acts inside namespaces: the local
	// host for `up`, another host for the agent there.
	host  string
	rep   Reporter
	fault fault
	// agents are dsrlab's agent containers on the other hosts, by host.
	agents map[string]*runtime.Container
	// controller is the lab's health check controller here, if it runs.
	controller *runtime.Container

	mu          sync.Mutex // guards containers, created and ns while nodes start in parallel
	changeMu    sync.Mutex // guards sum.Changes, the progress counts and the reporter
	containers  map[string]*runtime.Container
	created     map[string]bool // nodes whose container this run created
	started     []string        // containers this run created or restarted
	preexisting map[string]bool // IDs of the lab's containers before this run
	ns          map[string]*netconf.Namespace
	programs    map[string]*userProgram // by node, loaded and not yet attached
	tc          map[string]*userProgram // TC programs by tcSlot, likewise
	pre         *builtins               // dsrlab's own programs, loaded and not yet attached
	// records are the program records of the agent's nodes, which the
	// request brings and the result takes back; nil in up, which keeps
	// them in the state.
	records map[string]*ProgramRecord
	// health is the controller's view of the reals, which the balancers'
	// weights follow: up never gives new flows back to a real found down.
	health health.State
	sum    *Summary

	// creating is set once containers may be created: from then on a
	// failure rolls back.
	creating bool

	progressStep string
	progressDone int
}

// progress counts one finished action of a step that does total of them
// in parallel workers, and reports how far it is.
func (d *deployment) progress(step string, total int) {
	d.changeMu.Lock()
	defer d.changeMu.Unlock()
	if d.progressStep != step {
		d.progressStep, d.progressDone = step, 0
	}
	d.progressDone++
	d.rep.Progress(step, d.progressDone, total)
}

// change counts and reports one thing Up did; steps call it from parallel
// workers.
func (d *deployment) change(step, msg string) {
	d.changeMu.Lock()
	defer d.changeMu.Unlock()
	d.sum.Changes++
	d.rep.Detail(step, msg)
}

// detail reports an action that changes nothing in the lab (a program
// loaded, not yet attached), from any goroutine.
func (d *deployment) detail(step, msg string) {
	d.changeMu.Lock()
	defer d.changeMu.Unlock()
	d.rep.Detail(step, msg)
}

// note is the reporter's Note for steps that run parallel workers.
func (d *deployment) note(msg string) {
	d.changeMu.Lock()
	defer d.changeMu.Unlock()
	d.rep.Note(msg)
}

func (d *deployment) labels(n *topology.Node) map[string]string {
	return map[string]string{
		LabelLab:      d.topo.Name,
		LabelNode:     n.Name,
		LabelKind:     string(n.Kind),
		LabelTopology: d.topo.File,
	}
}

// preflight refuses to take a container name that something else owns
// (dsrlab never touches what it did not create) and to reconcile a running
// lab into a differently wired one, which only --reconfigure may replace.
func (d *deployment) preflight(ctx context.Context) (string, error) {
	for _, a := range d.topo.Advice() {
		d.rep.Note("advice: " + a)
	}
	if err := Reachable(ctx, d.rts, d.hostsInUse()); err != nil {
		return "", err
	}
	// Recorded before anything is created: down after a crash must know
	// every engine the lab may have containers on.
	if err := saveHosts(d.topo); err != nil {
		return "", err
	}
	// From here on this run may send the engines creates.
	if err := os.WriteFile(creatingFile(d.topo.Name), nil, 0o644); err != nil {
		return "", fmt.Errorf("state: %w", err)
	}
	// One inspect per node, in parallel as containers are started: one
	// after another, a large lab waits a round trip to the engine per node.
	found := make([]*runtime.Container, len(d.topo.Nodes))
	errs := make([]error, len(d.topo.Nodes))
	parallel(len(d.topo.Nodes), engineWorkers, func(i int) {
		n := d.topo.Nodes[i]
		found[i], errs[i] = d.rt(n).Inspect(ctx, n.ContainerName)
		if errors.Is(errs[i], runtime.ErrNotFound) {
			found[i], errs[i] = nil, nil
		}
	})
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	for i, n := range d.topo.Nodes {
		c := found[i]
		if c == nil {
			continue
		}
		if c.Labels[LabelLab] == d.topo.Name && c.Labels[LabelNode] == n.Name {
			d.containers[n.Name] = c
			continue
		}
		return "", fmt.Errorf("node %s: a container named %q already exists and %s; remove it or set a `prefix` in the topology",
			n.Name, n.ContainerName, owner(c))
	}
	// Chosen here, from the containers as they were before this run: the
	// builtins step runs beside the containers step, which changes them.
	d.pre.reals, d.pre.katrans = d.builtinNodes()
	running, err := d.labContainers(ctx)
	if err != nil {
		return "", err
	}
	for _, c := range running {
		d.preexisting[c.ID] = true
		switch c.Labels[LabelRole] {
		case roleAgent:
			d.agents[c.Labels[LabelHost]] = &c
		case roleController:
			d.controller = &c
		}
	}
	if len(running) > 0 {
		if err := d.sameWiring(running); err != nil {
			return "", err
		}
		return fmt.Sprintf("lab is up (%d containers): reconciling", len(running)), nil
	}
	return "docker engine up, names free", nil
}

func (d *deployment) sameWiring(running []runtime.Container) error {
	for _, c := range running {
		if c.Labels[LabelRole] != "" { // dsrlab's own: an agent, a controller
			continue
		}
		if d.topo.Node(c.Labels[LabelNode]) == nil {
			return fmt.Errorf("lab %q is up with a node %q this topology does not have: "+
				"`dsrlab up --reconfigure` replaces the lab", d.topo.Name, c.Labels[LabelNode])
		}
	}
	old, err := LoadState(d.topo.Name)
	if err != nil {
		// Containers without state: a crash between the two, or state
		// removed by hand. The containers' labels matched; trust them.
		return nil
	}
	if diff := wiringDiff(old, d.topo); diff != "" {
		return fmt.Errorf("lab %q is up with a different wiring (%s); only VIP reals, weights and hash modes, and programs' code and maps, change in place: "+
			"`dsrlab up --reconfigure` replaces the lab", d.topo.Name, diff)
	}
	return nil
}

func (d *deployment) images(ctx context.Context) (string, error) {
	// Every engine needs the images of its nodes, and another host's
	// engine the default image for dsrlab's agent too.
	type need struct{ host, image, node string }
	var needs []need
	for _, n := range d.topo.Nodes {
		needs = append(needs, need{n.Host.Name, n.Image, n.Name})
	}
	for _, h := range d.hostsInUse() {
		if h != d.host {
			needs = append(needs, need{h, topology.DefaultImage, "agent"})
		}
	}
	seen := map[need]bool{}
	var report []string
	for _, nd := range needs {
		key := need{nd.host, nd.image, ""}
		if seen[key] {
			continue
		}
		seen[key] = true
		where := nd.image
		if nd.host != topology.LocalHost {
			where += " on " + nd.host
		}
		rt := d.rts[nd.host]
		if b, ok := rt.(runtime.ImageBuilder); ok && nd.image == topology.DefaultImage {
			built, err := image.Ensure(ctx, b, nd.image, false)
			if err != nil {
				return "", fmt.Errorf("host %s: %w", nd.host, err)
			}
			if built {
				report = append(report, where+" built")
			} else {
				report = append(report, where+" present")
			}
			continue
		}
		if _, err := rt.Image(ctx, nd.image); err != nil {
			if errors.Is(err, runtime.ErrNotFound) {
				return "", fmt.Errorf("node %s: image %s is not present on host %s, and dsrlab never pulls: build or load it first", nd.node, nd.image, nd.host)
			}
			return "", err
		}
		report = append(report, where+" present")
	}
	return strings.Join(report, ", "), nil
}

// startContainers creates missing containers and starts stopped ones, in
// parallel: container start is the slowest part of Up.
func (d *deployment) startContainers(ctx context.Context) (string, error) {
	d.creating = true
	// What each worker needs is taken before they start: they write
	// d.containers concurrently.
	type job struct {
		node     *topology.Node
		existing *runtime.Container
	}
	var todo []job
	for _, n := range d.topo.Nodes {
		if existing := d.containers[n.Name]; existing == nil || !existing.Running() {
			todo = append(todo, job{n, existing})
		}
	}
	errs := make([]error, len(todo))
	parallel(len(todo), engineWorkers, func(i int) {
		n := todo[i].node
		if err := d.fault.atAction("containers", i); err != nil {
			errs[i] = err
			return
		}
		c, err := d.ensureContainer(ctx, n, todo[i].existing)
		if err != nil {
			errs[i] = fmt.Errorf("node %s: %w", n.Name, err)
			return
		}
		d.mu.Lock()
		d.containers[n.Name] = c
		d.mu.Unlock()
		// Opened by the worker that started it: the inspect that takes
		// overlaps the other containers' starts instead of following
		// them all.
		if d.here(n) {
			if errs[i] = d.openNamespace(ctx, n); errs[i] != nil {
				return
			}
		}
		d.progress("containers", len(todo))
	})
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	for _, n := range d.topo.Nodes {
		d.sum.Containers = append(d.sum.Containers, n.ContainerName)
		if d.ns[n.Name] != nil || !d.here(n) {
			continue
		}
		if err := d.openNamespace(ctx, n); err != nil {
			return "", err
		}
	}
	if len(todo) == 0 {
		return fmt.Sprintf("%d running", len(d.sum.Containers)), nil
	}
	return fmt.Sprintf("%d started", len(d.started)), nil
}

// openNamespace opens the network namespace of n's running container
// and names it for `ip netns`.
func (d *deployment) openNamespace(ctx context.Context, n *topology.Node) error {
	d.mu.Lock()
	id := d.containers[n.Name].ID
	d.mu.Unlock()
	ns, err := d.rt(n).Namespace(ctx, id)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	d.mu.Lock()
	d.ns[n.Name] = ns
	d.mu.Unlock()
	if err := nameNamespace(n.ContainerName, ns); err != nil {
		d.note(err.Error())
	}
	return nil
}

// seeThrough is the context of a request that creates or starts a
// container: one the engine was sent is seen through, Ctrl-C or not. The
// engine completes a create whose caller hung up, and a container made
// after rollback listed the lab's would be left behind (signals as the
// containers step started left up to all four of the reference lab's).
// Requests not yet sent are not sent.
func seeThrough(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

func (d *deployment) ensureContainer(ctx context.Context, n *topology.Node, existing *runtime.Container) (*runtime.Container, error) {
	sctx, err := seeThrough(ctx)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		c, err := d.rt(n).Start(sctx, existing.ID)
		if err == nil {
			d.recordStart(n, false, "started stopped container")
		}
		return c, err
	}
	cmd := keepalive
	switch {
	case n.Cmd != "":
		cmd = []string{"/bin/sh", "-c", n.Cmd}
	case n.Image == topology.DefaultImage && len(echoVIPs(d.topo.VIPsBackedBy(n))) > 0:
		// The real's echo service is its main process: it binds the VIPs
		// before they exist (IP_FREEBIND) and needs no exec later.
		cmd = echoCommand(n, echoVIPs(d.topo.VIPsBackedBy(n)))
	case runsSpeaker(n):
		// The BGP speaker is the main process of a katran or router
		// that speaks BGP: its sessions die with the container, a
		// clean stop withdraws first, a restart runs it again.
		cmd = bgpCommand(d.topo, n)
	}
	c, adopted, err := runOrAdopt(ctx, sctx, d.rt(n), runtime.ContainerSpec{
		Name: n.ContainerName, Hostname: n.Name, Image: n.Image, Cmd: cmd,
		Env: n.Env, Labels: d.labels(n), Sysctls: n.Sysctls, CapAdd: nodeCaps,
	})
	if err != nil {
		return nil, err
	}
	// An adopted container counts as this run's creation: the up that
	// created it got no further than its containers, so the node's exec
	// commands are still to run, and a failure removes it.
	d.recordStart(n, true, createdOr(adopted))
	return c, nil
}

// createdOr says how a container runOrAdopt gave came to be.
func createdOr(adopted bool) string {
	if adopted {
		return "adopted (created by an up that did not finish)"
	}
	return "created"
}

// identityLabels say which of a lab's containers one is: a node, or
// dsrlab's agent or controller on a host.
var identityLabels = []string{LabelLab, LabelNode, LabelRole, LabelHost}

// runOrAdopt creates and starts a container, or, when its name is taken
// by a container with the same identity, takes that one on (started if it
// is not running) and reports it adopted: the engine completes the creates
// of an up killed a moment before after that up is gone, and after this
// run's preflight looked. A container of anything else under the name is
// refused, its owner named. Requests go out with sctx, which a Ctrl-C
// does not cancel (seeThrough); waiting stops with ctx.
func runOrAdopt(ctx, sctx context.Context, rt runtime.Runtime, spec runtime.ContainerSpec) (*runtime.Container, bool, error) {
	c, err := rt.Run(sctx, spec)
	if !errors.Is(err, runtime.ErrNameInUse) {
		return c, false, err
	}
	c, ierr := rt.Inspect(sctx, spec.Name)
	// The engine takes the name before the create is done: for a moment
	// there may be no container under it to inspect.
	for tries := 0; errors.Is(ierr, runtime.ErrNotFound) && tries < 30; tries++ {
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		c, ierr = rt.Inspect(sctx, spec.Name)
	}
	switch {
	case errors.Is(ierr, runtime.ErrNotFound):
		return nil, false, err
	case ierr != nil:
		return nil, false, fmt.Errorf("%w; and then: %w", err, ierr)
	}
	for _, k := range identityLabels {
		if c.Labels[k] != spec.Labels[k] {
			return nil, false, fmt.Errorf("a container named %q already exists and %s; remove it or set a `prefix` in the topology", spec.Name, owner(c))
		}
	}
	if !c.Running() {
		if c, err = rt.Start(sctx, c.ID); err != nil {
			return nil, false, err
		}
	}
	return c, true, nil
}

// owner says whose a container is, for an error about its name.
func owner(c *runtime.Container) string {
	switch {
	case c.Labels[LabelNode] != "":
		return fmt.Sprintf("belongs to dsrlab lab %q (node %s)", c.Labels[LabelLab], c.Labels[LabelNode])
	case c.Labels[LabelLab] != "":
		return fmt.Sprintf("belongs to dsrlab lab %q (its %s on host %s)", c.Labels[LabelLab], c.Labels[LabelRole], c.Labels[LabelHost])
	}
	return "was not created by dsrlab"
}

// recordStart records a container this run started: created, when the
// node's exec commands are to run in it.
func (d *deployment) recordStart(n *topology.Node, created bool, verb string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.started = append(d.started, n.ContainerName)
	if created {
		d.created[n.Name] = true
	}
	d.change("containers", verb+" "+n.ContainerName)
}

func (d *deployment) closeNamespaces() {
	for _, ns := range d.ns {
		ns.Close()
	}
}

// rollback removes every container of the lab that was not there before
// this run: the ones it created, and one whose create the engine finished
// after this run gave up on it (Ctrl-C mid-request). Their network
// namespaces go with them, and with those the veths and XDP programs; the
// pins of their program arrays, the one kernel object made outside a
// container's namespace, are removed here. Containers that were up before
// keep what this run did to them (a replaced program, rewritten map
// entries): running up again converges. It tells whether all it created
// is gone.
func (d *deployment) rollback() (clean bool) {
	if !d.creating {
		// Failed before any container could exist: asking every engine
		// would only repeat an unreachable one's error.
		return true
	}
	clean = true
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var names []string
	for _, h := range d.hostsInUse() {
		list, err := d.rts[h].List(ctx, map[string]string{LabelLab: d.topo.Name})
		if err != nil {
			d.rep.Note("rollback: " + err.Error())
			clean = false
			continue
		}
		removed, ok := d.removeNew(ctx, d.rts[h], list)
		names, clean = append(names, removed...), clean && ok
	}
	for node := range d.created {
		if err := removeNodePins(d.topo.Name, node); err != nil {
			d.rep.Note("rollback: " + err.Error())
		}
		if err := removeTCPins(d.topo.Name, d.topo.Node(node)); err != nil {
			d.rep.Note("rollback: " + err.Error())
		}
	}
	sort.Strings(names)
	if len(names) > 0 {
		d.rep.Note("Rolled back: removed " + strings.Join(names, ", "))
	}
	return clean
}

// removeNew removes the containers of list that this run created, and
// tells whether it removed them all.
func (d *deployment) removeNew(ctx context.Context, rt runtime.Runtime, list []runtime.Container) (names []string, ok bool) {
	ok = true
	for _, c := range list {
		if d.preexisting[c.ID] {
			continue
		}
		if err := rt.Remove(ctx, c.ID); err != nil {
			d.rep.Note("rollback: " + err.Error())
			ok = false
			continue
		}
		unnameNamespace(c.Name)
		names = append(names, c.Name)
	}
	return names, ok
}
