package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dsrlab/dsrlab/bpf/prog"
	"github.com/dsrlab/dsrlab/internal/fileio"
	"github.com/dsrlab/dsrlab/internal/health"
	"github.com/dsrlab/dsrlab/internal/image"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// A lab may span several hosts, each with its own engine. dsrlab never
// assumes another host shares its kernel: what happens inside a remote
// host's namespaces (links, addresses, decap, services, XDP, NAT) is done
// there by dsrlab's agent, a container of the node image in that host's
// network and PID namespaces, which runs the same steps for the nodes of
// its host.

// Labels of the agent containers, beside LabelLab.
const (
	LabelRole = "dsrlab.role"
	LabelHost = "dsrlab.host"
	roleAgent = "agent"
)

// agentCaps let the agent enter the lab's containers' namespaces and load
// XDP programs (Docker 20.10 knows no CAP_BPF; SYS_ADMIN covers it), and
// read /proc/kallsyms (SYSLOG), which names the kernel functions where
// trace sees packets dropped.
var agentCaps = []string{"NET_ADMIN", "NET_RAW", "SYS_ADMIN", "SYSLOG"}

func (d *deployment) rt(n *topology.Node) runtime.Runtime { return d.rts[n.Host.Name] }

// here tells whether n's namespaces are this process's to configure.
func (d *deployment) here(n *topology.Node) bool { return n.Host.Name == d.host }

func (d *deployment) hostsInUse() []string { return HostsInUse(d.topo) }

// HostsInUse are the hosts that run nodes of the lab, sorted.
func HostsInUse(t *topology.Topology) []string {
	var hosts []string
	for _, n := range t.Nodes {
		if !slices.Contains(hosts, n.Host.Name) {
			hosts = append(hosts, n.Host.Name)
		}
	}
	slices.Sort(hosts)
	return hosts
}

// Reachable pings the engines of hosts, at once: a command that starts
// with it fails within the engines' timeout, naming the host, rather than
// hanging on its first request to one that does not answer.
func Reachable(ctx context.Context, rts runtime.Set, hosts []string) error {
	errs := make([]error, len(hosts))
	parallel(len(hosts), len(hosts), func(i int) {
		if err := rts[hosts[i]].Ping(ctx); err != nil {
			errs[i] = fmt.Errorf("host %s: %w", hosts[i], err)
		}
	})
	return errors.Join(errs...)
}

// labContainers lists the lab's containers on every engine it uses.
func (d *deployment) labContainers(ctx context.Context) ([]runtime.Container, error) {
	var all []runtime.Container
	for _, h := range d.hostsInUse() {
		list, err := d.rts[h].List(ctx, map[string]string{LabelLab: d.topo.Name})
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", h, err)
		}
		all = append(all, list...)
	}
	return all, nil
}

func agentName(t *topology.Topology, host string) string {
	return t.Prefix + "dsrlab-agent-" + host
}

// startAgents runs an agent container on every other host of the lab.
func (d *deployment) startAgents(ctx context.Context) error {
	for _, h := range d.hostsInUse() {
		if h == d.host {
			continue
		}
		rt := d.rts[h]
		// An agent runs the dsrlab of the image it was started from: one
		// of another dsrlab would not know what this one asks of it.
		// (Asked here, not before the loop: a lab on one host needs no
		// digest, whose reading of dsrlab's binary it would pay for.)
		digest, err := image.Digest()
		if err != nil {
			return err
		}
		if a := d.agents[h]; a != nil && a.Labels[image.DigestLabel] != digest {
			if err := d.replaceAgent(ctx, h, a); err != nil {
				return err
			}
		}
		if a := d.agents[h]; a != nil && a.Running() {
			continue
		}
		var c *runtime.Container
		sctx, err := seeThrough(ctx)
		if err != nil {
			return err
		}
		if a := d.agents[h]; a != nil {
			c, err = rt.Start(sctx, a.ID)
		} else {
			// Its main process is the controller of the host's health
			// checks, which keeps its state in the container: the engine
			// restarts it after a crash, and down removes it all.
			c, _, err = runOrAdopt(ctx, sctx, rt, runtime.ContainerSpec{
				Name: agentName(d.topo, h), Hostname: "dsrlab-agent", Image: topology.DefaultImage,
				Cmd: controllerCommand(d.topo.Name, h),
				Labels: map[string]string{LabelLab: d.topo.Name, LabelRole: roleAgent, LabelHost: h, LabelTopology: d.topo.File,
					image.DigestLabel: digest},
				CapAdd: agentCaps, HostNetwork: true, HostPID: true, Mounts: true,
				RestartPolicy: "unless-stopped",
			})
		}
		if err != nil {
			return fmt.Errorf("host %s: agent: %w", h, err)
		}
		d.agents[h] = c
		d.change("agents", "agent on host "+h)
	}
	return nil
}

// replaceAgent removes the agent another dsrlab started on host, and the
// image it ran, which the images step could not remove while in use
// (the engine names an image whose tag moved by its ID).
func (d *deployment) replaceAgent(ctx context.Context, host string, a *runtime.Container) error {
	rt := d.rts[host]
	if err := rt.Remove(ctx, a.ID); err != nil {
		return fmt.Errorf("host %s: remove the agent of another dsrlab: %w", host, err)
	}
	delete(d.agents, host)
	d.change("agents", "removed the agent of another dsrlab on host "+host)
	if b, ok := rt.(runtime.ImageBuilder); ok && strings.HasPrefix(a.Image, "sha256:") {
		_ = b.RemoveImage(ctx, a.Image) // refused while other containers use it
	}
	return nil
}

// A phase is the steps the agent runs on its host at one point of up.
type phase string

const (
	// phaseReals: links, addresses, decapsulation and services, so that
	// reals are ready before any balancer sends them traffic.
	phaseReals phase = "reals"
	// phaseBalancers: XDP and NAT balancers.
	phaseBalancers phase = "balancers"
	// The commands that read a running lab, for the nodes of the host.
	phaseVerify  phase = "verify"
	phaseStats   phase = "stats"
	phaseInspect phase = "inspect"
	// One end of a verify pair split over two hosts: the probe from a
	// client, the bytes received on a balancer's uplink.
	phaseProbe   phase = "probe"
	phaseRxBytes phase = "rx-bytes"
	// phasePrograms loads the users' programs the request brings, which
	// has that host's kernel verify them, and no more.
	phasePrograms phase = "programs"
	// PhaseMap is `dsrlab map` on a node of the host; the command's own
	// code runs it there (see AgentMaps).
	PhaseMap phase = "map"
	// phaseCounters reads the interface counters of the running nodes
	// the request names (Counters).
	phaseCounters phase = "counters"
	// phaseEvents reads the events of the controller there.
	phaseEvents phase = "events"
	// phaseRoutes reads the routes of the routers the request names.
	phaseRoutes phase = "routes"
)

// attachesProgram tells whether n's own program is attached in phase p:
// a real's by the decap step, every other node's by the XDP step.
func (p phase) attachesProgram(n *topology.Node) bool {
	return (p == phaseReals) == (n.Kind == topology.KindReal)
}

func (d *deployment) phaseSteps(p phase) []step {
	if p == phaseReals {
		return []step{{name: "links", fn: d.createLinks}, {name: "addressing", fn: d.address}, {name: "decap", fn: d.decap}, {name: "services", fn: d.services}}
	}
	return []step{{name: "xdp", fn: d.loadBalancers}, {name: "nat", fn: d.natBalancers}, {name: "healthcheck", fn: d.healthChecks}}
}

// AgentRequest is what up asks of the agent on another host.
type AgentRequest struct {
	Topology []byte `json:"topology"` // resolved, as the state records it
	File     string `json:"file"`
	Host     string `json:"host"`
	Phase    phase  `json:"phase"`
	// Namespaces are the network namespaces of the host's nodes, as
	// files on that host.
	Namespaces map[string]string `json:"namespaces"`
	// Containers are the host's lab containers, for inspect.
	Containers []runtime.Container `json:"containers,omitempty"`
	// Programs are the users' programs of the host's nodes that the phase
	// needs, by node: the other host has neither their sources nor
	// dsrlab's cache.
	Programs map[string]AgentProgram `json:"programs,omitempty"`
	Map      *MapRequest             `json:"map,omitempty"`
	Probe    *ProbeRequest           `json:"probe,omitempty"`
	// Iface is the interface whose counters phaseRxBytes reads, as
	// NODE:IFACE.
	Iface string `json:"iface,omitempty"`
	// Nodes are the nodes whose counters phaseCounters reads (those
	// whose containers run), or the routers phaseRoutes reads.
	Nodes []string `json:"nodes,omitempty"`
	// Since and EventsOffset say which of the events phaseEvents reads:
	// those from Since on, after the first EventsOffset bytes.
	Since        time.Time `json:"since,omitzero"`
	EventsOffset int64     `json:"events_offset,omitempty"`
}

// namespaces says whose namespaces a request needs: all the host's
// nodes', or only those named (one, or none).
func (r AgentRequest) namespaces() (all bool, only []string) {
	switch {
	case r.Phase == phasePrograms, r.Phase == phaseEvents:
		return false, nil
	case r.Probe != nil:
		return false, []string{r.Probe.Node}
	case r.Map != nil:
		return false, []string{r.Map.Node}
	case r.Iface != "":
		node, _, _ := strings.Cut(r.Iface, ":")
		return false, []string{node}
	case r.Phase == phaseCounters, r.Phase == phaseRoutes:
		return false, r.Nodes
	}
	return true, nil
}

// ProbeRequest is Probe from a node of another host.
type ProbeRequest struct {
	Node    string         `json:"node"`
	Dst     netip.AddrPort `json:"dst"`
	Proto   topology.Proto `json:"proto"`
	Payload int            `json:"payload"`
}

// AgentProgram is a user's program on its way to another host: the
// object's bytes, the path they were read from (for messages and the
// record), and what up last recorded of the node's program.
type AgentProgram struct {
	Path   string `json:"path"`
	Object []byte `json:"object,omitempty"` // nil when it could not be read
	// FilePos is where the topology file names the source or object: the
	// agent's topology is the resolved one, whose lines are not the file's.
	FilePos topology.Position `json:"file_pos"`
	Record  *ProgramRecord    `json:"record,omitempty"`
}

// MapRequest is `dsrlab map NODE ARGS...` for a node of another host.
type MapRequest struct {
	Node   string   `json:"node"`
	Args   []string `json:"args"`
	Format string   `json:"format"`
	All    bool     `json:"all,omitempty"`
	Limit  int      `json:"limit,omitempty"`
}

// AgentResult is what the agent did.
type AgentResult struct {
	Details []string          `json:"details"` // "step\tmsg"
	Notes   []string          `json:"notes"`
	Changes int               `json:"changes"`
	XDP     map[string]string `json:"xdp"`
	NAT     map[string]string `json:"nat"`
	Decap   map[string]string `json:"decap"`
	Checks  []Check           `json:"checks,omitempty"`
	Stats   []BalancerStats   `json:"stats,omitempty"`
	Nodes   []NodeReport      `json:"nodes,omitempty"`
	// Programs are the records of the users' programs the phase
	// attached, for up to keep in the lab's state.
	Programs     map[string]ProgramRecord `json:"programs,omitempty"`
	Output       string                   `json:"output,omitempty"` // of map
	Exchange     *Exchange                `json:"exchange,omitempty"`
	RxBytes      uint64                   `json:"rx_bytes,omitempty"`
	Counters     []NodeCounters           `json:"counters,omitempty"`
	Events       []health.Event           `json:"events,omitempty"`
	Routes       []RouterRoutes           `json:"routes,omitempty"`
	EventsOffset int64                    `json:"events_offset,omitempty"`
	Error        string                   `json:"error,omitempty"`
}

// remotePhase runs a phase on every other host, through its agent.
func (d *deployment) remotePhase(p phase) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		var done []string
		for _, h := range d.hostsInUse() {
			if h == d.host {
				continue
			}
			if err := d.runAgent(ctx, h, p); err != nil {
				return "", fmt.Errorf("host %s: %w", h, err)
			}
			done = append(done, h)
		}
		if len(done) == 0 {
			return "no other hosts", nil
		}
		return fmt.Sprintf("%s on %s", p, strings.Join(done, ", ")), nil
	}
}

// agentPrograms are the users' programs of host's nodes that want picks,
// on their way to its agent.
func (d *deployment) agentPrograms(host string, want func(*topology.Node) bool) map[string]AgentProgram {
	out := map[string]AgentProgram{}
	for _, n := range d.topo.Nodes {
		if n.Host.Name != host || n.Program == nil || !want(n) {
			continue
		}
		up := d.programs[n.Name]
		ap := AgentProgram{Path: up.obj.Path, Object: up.obj.Data, FilePos: n.Program.FilePos}
		if rec, err := loadProgramRecord(d.topo.Name, n.Name); err == nil {
			ap.Record = rec
		}
		out[n.Name] = ap
	}
	return out
}

// agentsStep starts dsrlab's agent on every other host of the lab and has
// the kernels there verify the users' programs of their nodes, before
// any node container exists: a program another host's kernel rejects
// fails up as early as one this host's kernel rejects.
func (d *deployment) agentsStep(ctx context.Context) (string, error) {
	d.creating = true
	if err := d.startAgents(ctx); err != nil {
		return "", err
	}
	var report []string
	for _, h := range d.hostsInUse() {
		if h == d.host {
			continue
		}
		report = append(report, h)
		programs := d.agentPrograms(h, func(*topology.Node) bool { return true })
		if len(programs) == 0 {
			continue
		}
		if _, err := agentCall(ctx, d.rts, d.topo, h, AgentRequest{Phase: phasePrograms, Programs: programs}); err != nil {
			return "", err
		}
		report[len(report)-1] += fmt.Sprintf(" (%d programs verified)", len(programs))
	}
	if len(report) == 0 {
		return "no other hosts", nil
	}
	return "on " + strings.Join(report, ", "), nil
}

func (d *deployment) runAgent(ctx context.Context, host string, p phase) error {
	req := AgentRequest{Phase: p, Programs: d.agentPrograms(host, p.attachesProgram)}
	res, err := agentOp(ctx, d.rts, d.topo, host, req)
	if err != nil {
		return err
	}
	for node, rec := range res.Programs {
		if err := saveProgramRecord(d.topo.Name, node, rec); err != nil {
			return err
		}
	}
	for _, det := range res.Details {
		s, msg, _ := strings.Cut(det, "\t")
		d.change(s, host+": "+msg)
	}
	for _, n := range res.Notes {
		d.rep.Note(host + ": " + n)
	}
	for k, v := range res.XDP {
		d.sum.XDP[k] = v
	}
	for k, v := range res.NAT {
		d.sum.NAT[k] = v
	}
	for k, v := range res.Decap {
		d.sum.Decap[k] = v
	}
	if res.Error != "" {
		return errors.New(res.Error)
	}
	return nil
}

// onHosts runs p on each of hosts through its agent; the first failure
// ends it.
func onHosts(ctx context.Context, rts runtime.Set, t *topology.Topology, hosts []string, p phase) ([]*AgentResult, error) {
	var results []*AgentResult
	for _, h := range hosts {
		res, err := agentCall(ctx, rts, t, h, AgentRequest{Phase: p})
		if err != nil {
			return nil, err
		}
		results = append(results, res)
	}
	return results, nil
}

// agentCall is agentOp for a caller that takes a failed phase as its
// error; the result comes back either way, for what it holds.
func agentCall(ctx context.Context, rts runtime.Set, t *topology.Topology, host string, req AgentRequest) (*AgentResult, error) {
	res, err := agentOp(ctx, rts, t, host, req)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", host, err)
	}
	if res.Error != "" {
		return res, fmt.Errorf("host %s: %s", host, res.Error)
	}
	return res, nil
}

// agentOp asks the agent on host to run req's phase for the lab's nodes
// there; it completes the request with the lab and the nodes' namespaces.
// An error of the phase itself is in the result, for the caller to weigh.
func agentOp(ctx context.Context, rts runtime.Set, t *topology.Topology, host string, req AgentRequest) (*AgentResult, error) {
	resolved, err := t.Resolved()
	if err != nil {
		return nil, err
	}
	req.Topology, req.File, req.Host = resolved, t.File, host
	if all, only := req.namespaces(); all || len(only) > 0 {
		if req.Namespaces, err = NamespacePaths(ctx, rts, t, host, only...); err != nil {
			return nil, err
		}
	}
	in, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var out, errOut bytes.Buffer
	code, err := ExecAgent(ctx, rts, t, host, []string{image.BinaryPath, "agent"}, runtime.ExecIO{Stdin: bytes.NewReader(in), Stdout: &out, Stderr: &errOut})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	var res AgentResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("agent exited %d without an answer: %s", code, strings.TrimSpace(errOut.String()))
	}
	return &res, nil
}

// RunAgent is the agent's side: it runs a phase of up for the nodes of its
// host, in the namespaces the request names.
func RunAgent(ctx context.Context, req AgentRequest) *AgentResult {
	res := &AgentResult{}
	var d *deployment
	fail := func(err error) *AgentResult {
		res.Error = err.Error()
		if d != nil {
			// What did get attached must be recorded all the same.
			res.Programs = d.attachedPrograms()
		}
		return res
	}
	topo, err := topology.Parse(req.Topology, req.File)
	if err != nil {
		return fail(err)
	}
	rec := &agentReporter{res: res}
	d = &deployment{
		topo: topo, host: req.Host, rep: rec,
		ns:       map[string]*netconf.Namespace{},
		programs: map[string]*userProgram{},
		tc:       map[string]*userProgram{},
		sum:      &Summary{XDP: map[string]string{}, NAT: map[string]string{}, Decap: map[string]string{}},
	}
	defer d.closeNamespaces()
	allNamespaces, _ := req.namespaces()
	for _, n := range topo.Nodes {
		if !d.here(n) {
			continue
		}
		path := req.Namespaces[n.Name]
		switch {
		case path == "" && !allNamespaces:
			continue // a request for one node brings that one's only
		case path == "":
			return fail(fmt.Errorf("node %s: no namespace given", n.Name))
		}
		ns, err := netconf.FromPath(path, n.Name)
		if err != nil {
			return fail(err)
		}
		d.ns[n.Name] = ns
	}
	open := func(n *topology.Node) (*netconf.Namespace, error) {
		if ns := d.ns[n.Name]; ns != nil {
			return ns.Clone()
		}
		return nil, fmt.Errorf("node %s runs on host %s, not %s", n.Name, n.Host.Name, req.Host)
	}
	defer d.closePrograms()
	if err := d.receivePrograms(req); err != nil {
		return fail(err)
	}
	switch req.Phase {
	case phaseVerify:
		res.Checks, _, err = verifyOn(ctx, nil, topo, req.Host, open)
	case phaseStats:
		res.Stats, _, err = statsOn(topo, req.Host, open)
		err = errors.Join(err, withHealth(topo.Name, res.Stats))
	case phaseInspect:
		// The health of the reals this host's katrans check is kept
		// here, by the controller of this host.
		st, herr := health.ReadState(labDir(topo.Name))
		err = herr
		for i := range req.Containers {
			c := &req.Containers[i]
			nr := containerReport(req.Host, c)
			if ns := d.ns[nr.Node]; ns != nil {
				err = errors.Join(err, readNamespace(nr, ns))
			}
			nr.Health = st.OfKatran(nr.Node)
			res.Nodes = append(res.Nodes, *nr)
		}
	case phaseRoutes:
		for _, node := range req.Nodes {
			ns, r := d.ns[node], topo.Node(node)
			if ns == nil || r == nil {
				return fail(fmt.Errorf("node %s: not on host %s", node, req.Host))
			}
			rr, rerr := routerRoutes(r, ns, topo)
			if rerr != nil {
				return fail(rerr)
			}
			res.Routes = append(res.Routes, rr)
		}
	case phaseEvents:
		res.Events, res.EventsOffset, err = health.ReadEvents(labDir(topo.Name), req.Since, req.EventsOffset)
	case phaseProbe:
		pr := req.Probe
		ns := d.ns[pr.Node]
		if ns == nil {
			return fail(fmt.Errorf("node %s: not on host %s", pr.Node, req.Host))
		}
		var ex Exchange
		ex, err = Probe(ctx, ns, pr.Dst, pr.Proto, pr.Payload)
		res.Exchange = &ex
	case phaseRxBytes:
		node, iface, _ := strings.Cut(req.Iface, ":")
		ns := d.ns[node]
		if ns == nil {
			return fail(fmt.Errorf("node %s: not on host %s", node, req.Host))
		}
		res.RxBytes, err = rxBytes(ns, iface)
	case phaseCounters:
		for _, node := range req.Nodes {
			ns := d.ns[node]
			if ns == nil {
				return fail(fmt.Errorf("node %s: not on host %s", node, req.Host))
			}
			res.Counters = append(res.Counters, nodeCounters(node, ns))
		}
	case phasePrograms:
		// receivePrograms did it all.
	case phaseReals:
		err = d.runPhase(ctx, req.Phase)
	case phaseBalancers:
		err = d.balancersHere(ctx)
	default:
		err = fmt.Errorf("the agent has no phase %q", req.Phase)
	}
	if err != nil {
		return fail(err)
	}
	res.Changes = d.sum.Changes
	res.XDP, res.NAT, res.Decap = d.sum.XDP, d.sum.NAT, d.sum.Decap
	res.Programs = d.attachedPrograms()
	return res
}

func (d *deployment) runPhase(ctx context.Context, p phase) error {
	for _, s := range d.phaseSteps(p) {
		if _, err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// balancersHere runs phaseBalancers in the agent, and records the
// topology and namespaces the balancers now follow for the controller
// there, under the lab's lock there: the controller writes no weights
// from the record this phase replaces.
func (d *deployment) balancersHere(ctx context.Context) error {
	unlock, err := Lock(d.topo.Name)
	if err != nil {
		return err
	}
	defer unlock()
	if err := d.runPhase(ctx, phaseBalancers); err != nil {
		return err
	}
	if err := saveNamespaces(d.topo.Name, d.ns); err != nil {
		return err
	}
	return saveState(d.topo)
}

// attachedPrograms are the records of the programs on the agent's nodes,
// for up to keep.
func (d *deployment) attachedPrograms() map[string]ProgramRecord {
	out := map[string]ProgramRecord{}
	for node, rec := range d.records {
		out[node] = *rec
	}
	return out
}

// receivePrograms loads the users' programs a request brings into this
// host's kernel, which verifies them, with their maps filled; positioned
// errors name the topology file as up read it.
func (d *deployment) receivePrograms(req AgentRequest) error {
	d.records = map[string]*ProgramRecord{}
	for node, ap := range req.Programs {
		n := d.topo.Node(node)
		if n == nil || n.Program == nil || !d.here(n) {
			return fmt.Errorf("node %s: no program of this host's", node)
		}
		n.Program.FilePos = ap.FilePos
		obj, err := prog.Parse(ap.Object, ap.Path, n.Program.Source, n.Program.Name)
		if err != nil {
			return atProgram(n.Program, err)
		}
		up, err := newUserProgram(d.topo, n.Program, obj)
		if err != nil {
			return err
		}
		if err := up.load(); err != nil {
			return err
		}
		d.programs[node] = up
		if ap.Record != nil {
			d.records[node] = ap.Record
		}
	}
	return nil
}

// remoteProbe runs Probe from a client on another host, through the agent
// there.
func remoteProbe(ctx context.Context, rts runtime.Set, t *topology.Topology, cl *topology.Node, dst netip.AddrPort, proto topology.Proto, payload int) (Exchange, error) {
	res, err := agentCall(ctx, rts, t, cl.Host.Name, AgentRequest{Phase: phaseProbe, Probe: &ProbeRequest{Node: cl.Name, Dst: dst, Proto: proto, Payload: payload}})
	if res == nil || res.Exchange == nil {
		return Exchange{}, err
	}
	return *res.Exchange, err
}

// remoteRxBytes reads the bytes an interface of another host's node has
// received, through the agent there.
func remoteRxBytes(ctx context.Context, rts runtime.Set, t *topology.Topology, i *topology.Interface) (uint64, error) {
	res, err := agentCall(ctx, rts, t, i.Node.Host.Name, AgentRequest{Phase: phaseRxBytes, Iface: i.String()})
	if err != nil {
		return 0, err
	}
	return res.RxBytes, nil
}

// RemoteMap runs `dsrlab map` for a node of another host, through the
// agent there: the maps are opened in that host's kernel, and the node's
// own object travels with the request to decode them by its BTF. It
// returns the command's output.
func RemoteMap(ctx context.Context, rts runtime.Set, t *topology.Topology, mr MapRequest) (string, error) {
	n := t.Node(mr.Node)
	if n == nil {
		return "", fmt.Errorf("lab %q has no node %q", t.Name, mr.Node)
	}
	req := AgentRequest{Phase: PhaseMap, Map: &mr}
	own, err := recordedObject(t.Name, n.Name)
	if err != nil {
		return "", err
	}
	if own != nil {
		req.Programs = map[string]AgentProgram{n.Name: *own}
	}
	res, err := agentCall(ctx, rts, t, n.Host.Name, req)
	if res == nil {
		return "", err
	}
	return res.Output, err
}

// AgentMaps is the agent's side of RemoteMap: it opens the maps of the
// requested node's programs in the namespace the request names. The
// caller closes them.
func AgentMaps(req AgentRequest) (*topology.Topology, []*prog.Map, error) {
	topo, err := topology.Parse(req.Topology, req.File)
	if err != nil {
		return nil, nil, err
	}
	n := topo.Node(req.Map.Node)
	path := req.Namespaces[req.Map.Node]
	if n == nil || path == "" {
		return nil, nil, fmt.Errorf("node %s: not on host %s", req.Map.Node, req.Host)
	}
	ns, err := netconf.FromPath(path, n.Name)
	if err != nil {
		return nil, nil, err
	}
	defer ns.Close()
	var own *AgentProgram
	if ap, ok := req.Programs[n.Name]; ok {
		own = &ap
	}
	maps, err := nodeMaps(ns, n, own)
	return topo, maps, err
}

// agentReporter keeps what the agent's steps report, for up to show.
type agentReporter struct{ res *AgentResult }

func (r *agentReporter) Step(string, time.Duration, string, error) {}
func (r *agentReporter) Detail(step, msg string) {
	r.res.Details = append(r.res.Details, step+"\t"+msg)
}
func (r *agentReporter) Note(msg string)           { r.res.Notes = append(r.res.Notes, msg) }
func (r *agentReporter) Progress(string, int, int) {}

func hostsFile(lab string) string {
	return filepath.Join(stateRoot(), lab, "hosts.json")
}

// HostRecord is how dsrlab reaches one host's engine.
type HostRecord struct {
	Docker string             `json:"docker,omitempty"`
	TLS    *topology.TLSFiles `json:"tls,omitempty"`
}

// saveHosts records the engines of the lab's hosts, for down.
func saveHosts(t *topology.Topology) error {
	hosts := map[string]HostRecord{}
	for _, name := range HostsInUse(t) {
		h := t.Host(name)
		hosts[name] = HostRecord{Docker: h.Docker, TLS: h.TLS}
	}
	data, err := json.Marshal(hosts)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(hostsFile(t.Name)), 0o755); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return os.WriteFile(hostsFile(t.Name), data, 0o644)
}

// creatingFile is there while an up may have creates in flight at an
// engine: up writes it after the lab's hosts, before it creates anything,
// and removes it when it returns, its requests all seen through. Left
// behind, it says an up died (SIGKILL, a crash) whose creates the engine
// may still complete: down then watches for them (lateCreates).
func creatingFile(lab string) string { return filepath.Join(labDir(lab), "creating") }

// LoadHosts returns the engines a lab's containers may be on, as up
// recorded them before it created any; only the local host when there is
// no record.
func LoadHosts(lab string) (map[string]HostRecord, error) {
	if err := topology.ValidLabName(lab); err != nil {
		return nil, err
	}
	hosts := map[string]HostRecord{topology.LocalHost: {}}
	data, err := fileio.ReadRegular(hostsFile(lab), fileio.MaxText)
	if errors.Is(err, os.ErrNotExist) {
		return hosts, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := json.Unmarshal(data, &hosts); err != nil {
		return nil, fmt.Errorf("%s: %w", hostsFile(lab), err)
	}
	return hosts, nil
}
