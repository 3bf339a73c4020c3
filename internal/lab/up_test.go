package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/labtest"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/internal/runtime/fake"
	"github.com/dsrlab/dsrlab/topology"
)

// These tests run the orchestration of Up and Down against the fake
// runtime: the containers are plain network namespaces, but the veths,
// addresses, routes, XDP programs, nftables and echo services in them are
// real, so Verify proves the whole DSR path without a Docker engine.

// recorder is a Reporter that keeps what it was told.
type recorder struct {
	mu       sync.Mutex
	steps    []string // "name" or "name FAILED"
	notes    []string
	progress map[string]int // step -> highest done reported
	// onDetail, when set, is told every action reported, as it is.
	onDetail func(step, msg string)
}

func (r *recorder) Step(name string, _ time.Duration, _ string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		name += " FAILED"
	}
	r.steps = append(r.steps, name)
}
func (r *recorder) Detail(step, msg string) {
	if r.onDetail != nil {
		r.onDetail(step, msg)
	}
}
func (r *recorder) Note(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, msg)
}
func (r *recorder) Progress(step string, done, _ int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.progress == nil {
		r.progress = map[string]int{}
	}
	r.progress[step] = max(r.progress[step], done)
}

// fakeLab is labtest's fake runtime, with no fault injected.
func fakeLab(t *testing.T) *fake.Runtime {
	t.Helper()
	rt := labtest.Runtime(t)
	t.Setenv(FaultEnv, "")
	return rt
}

func mustUp(t *testing.T, rt runtime.Runtime, topo *topology.Topology) (*Summary, *recorder) {
	t.Helper()
	rep := &recorder{}
	sum, err := Up(context.Background(), one(rt), topo, rep)
	if err != nil {
		t.Fatalf("up: %v (steps %v, notes %v)", err, rep.steps, rep.notes)
	}
	return sum, rep
}

func mustVerify(t *testing.T, rt runtime.Runtime, topo *topology.Topology) {
	t.Helper()
	checks, err := Verify(context.Background(), one(rt), topo)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	for _, c := range checks {
		if !c.Pass {
			t.Errorf("verify %s from %s: %s", c.VIP, c.Client, c.Reason)
		}
	}
}

func labNames(t *testing.T, rt runtime.Runtime, lab string) []string {
	t.Helper()
	list, err := rt.List(context.Background(), map[string]string{LabelLab: lab})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
	}
	return names
}

// parseLab reads a topology given inline, for variations of the labs.
func parseLab(t *testing.T, text string) *topology.Topology {
	t.Helper()
	topo, err := topology.Parse([]byte(text), "inline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestUpReferenceLabAnswersThroughTheVIP(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	sum, rep := mustUp(t, rt, topo)
	want := []string{"programs", "preflight", "images", "agents", "containers", "links", "addressing", "builtins", "decap", "services", "hosts", "xdp", "tc", "nat", "healthcheck", "controller", "hosts-xdp", "bgp", "exec"}
	if !slices.Equal(rep.steps, want) {
		t.Errorf("steps %v, want %v", rep.steps, want)
	}
	if len(sum.Containers) != 4 || sum.Links != 3 {
		t.Errorf("summary: %d containers, %d links; want 4 and 3", len(sum.Containers), sum.Links)
	}
	if !strings.HasPrefix(sum.Decap["real"], "xdp") && !strings.HasPrefix(sum.Decap["real"], "ipip") {
		t.Errorf("real decapsulates by %q", sum.Decap["real"])
	}
	if sum.XDP["katran"] == "" {
		t.Error("no XDP mode reported for katran")
	}
	if rep.progress["containers"] != 4 {
		t.Errorf("containers progress reached %d of 4", rep.progress["containers"])
	}
	mustVerify(t, rt, topo)
	if _, err := LoadState(topo.Name); err != nil {
		t.Errorf("no state recorded after up: %v", err)
	}
}

func TestUpTwiceChangesNothing(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	mustUp(t, rt, topo)
	sum, _ := mustUp(t, rt, topo)
	if sum.Changes != 0 {
		t.Errorf("second up made %d changes, want 0", sum.Changes)
	}
}

func TestFaultAtEveryStepRollsBack(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	for _, step := range []string{"programs", "preflight", "builtins", "builtins:1", "images", "agents", "containers", "containers:2", "links", "links:1", "addressing", "decap", "services", "xdp", "tc", "nat", "exec"} {
		t.Run(step, func(t *testing.T) {
			t.Setenv(FaultEnv, step)
			rep := &recorder{}
			_, err := Up(context.Background(), one(rt), topo, rep)
			var inj ErrInjected
			if !errors.As(err, &inj) {
				t.Fatalf("up with fault at %s: %v, want the injected fault", step, err)
			}
			if left := labNames(t, rt, topo.Name); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			if _, err := LoadState(topo.Name); err == nil {
				t.Error("a failed up recorded state")
			}
			// Nothing at all, not even the hosts recorded for down: the
			// lab is as if never brought up.
			if recorded, err := Recorded(topo.Name); recorded || err != nil {
				t.Errorf("a failed up of a new lab left its state directory: %v", err)
			}
			if !slices.ContainsFunc(rep.steps, func(s string) bool { return strings.HasSuffix(s, "FAILED") }) {
				t.Errorf("no step reported as failed: %v", rep.steps)
			}
		})
	}
}

func TestEngineRefusalRollsBack(t *testing.T) {
	rt := fakeLab(t)
	rt.FailRun = func(name string) error {
		if name == "real" {
			return errors.New("no space left on device")
		}
		return nil
	}
	topo := load(t, "dsr.yaml")
	_, err := Up(context.Background(), one(rt), topo, &recorder{})
	if err == nil || !strings.Contains(err.Error(), "node real") || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("up: %v, want the engine's refusal for node real", err)
	}
	if left := labNames(t, rt, topo.Name); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestUnreachableEngineCreatesNothing(t *testing.T) {
	rt := fakeLab(t)
	rt.SetUnreachable(errors.New("engine not running"))
	topo := load(t, "dsr.yaml")
	_, err := Up(context.Background(), one(rt), topo, &recorder{})
	if err == nil || !strings.HasPrefix(err.Error(), "preflight") {
		t.Fatalf("up: %v, want a preflight failure", err)
	}
	rt.SetUnreachable(nil)
	if left := labNames(t, rt, topo.Name); len(left) > 0 {
		t.Errorf("created %v", left)
	}
}

// The lab's lock file goes when the lab is down (or never came up), and
// stays while the lab is up; a held lock is refused to another holder.
func TestLockFileGoesWithTheLab(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	lockPath := filepath.Join(stateRoot(), "."+topo.Name+".lock")
	unlock, err := Lock(topo.Name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(topo.Name); err == nil || !strings.Contains(err.Error(), "another dsrlab process is working on lab") {
		t.Errorf("a second lock: %v", err)
	}
	mustUp(t, rt, topo)
	unlock()
	if _, err := os.Stat(lockPath); err != nil {
		t.Errorf("the lock of a lab that is up is gone: %v", err)
	}
	unlock, err = Lock(topo.Name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Down(context.Background(), one(rt), topo.Name, &recorder{}); err != nil {
		t.Fatal(err)
	}
	unlock()
	if _, err := os.Stat(lockPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the lock file outlived the lab: %v", err)
	}
	// Taken again, on a new file.
	unlock, err = Lock(topo.Name)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
}

func TestFaultOnRunningLabKeepsWhatWasThere(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	mustUp(t, rt, topo)
	before := labNames(t, rt, topo.Name)
	t.Setenv(FaultEnv, "xdp")
	if _, err := Up(context.Background(), one(rt), topo, &recorder{}); err == nil {
		t.Fatal("up with a fault succeeded")
	}
	if after := labNames(t, rt, topo.Name); !slices.Equal(before, after) {
		t.Errorf("containers before %v, after a failed reconcile %v", before, after)
	}
	if _, err := LoadState(topo.Name); err != nil {
		t.Errorf("the running lab's state is gone: %v", err)
	}
	t.Setenv(FaultEnv, "")
	mustVerify(t, rt, topo)
}

func TestRestartedContainerIsRewired(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	mustUp(t, rt, topo)
	if err := rt.Stop(context.Background(), "real", true); err != nil {
		t.Fatal(err)
	}
	repairs(t, rt, topo, "node real: container real is exited")
}

// repairs checks that inspect flags a problem of a running lab and that up
// mends it: it changes something, and the VIPs answer again.
func repairs(t *testing.T, rt runtime.Runtime, topo *topology.Topology, problem string) {
	t.Helper()
	rep, err := Inspect(context.Background(), one(rt), topo.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rep.Problems, func(p string) bool { return strings.Contains(p, problem) }) {
		t.Errorf("inspect does not flag %q: %v", problem, rep.Problems)
	}
	if sum, _ := mustUp(t, rt, topo); sum.Changes == 0 {
		t.Errorf("up changed nothing about %q", problem)
	}
	mustVerify(t, rt, topo)
}

func TestLoneLinkEndIsReplaced(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	mustUp(t, rt, topo)
	ns, err := rt.Namespace(context.Background(), "client")
	if err != nil {
		t.Fatal(err)
	}
	// Deleting one end of a veth deletes both: the router's eth2 goes too.
	err = ns.DeleteLink("eth0")
	ns.Close()
	if err != nil {
		t.Fatal(err)
	}
	repairs(t, rt, topo, "node client: interface eth0 is missing")
}

func TestDownRemovesEverythingByLabel(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	mustUp(t, rt, topo)
	// A foreign container stays whatever happens to the lab.
	if _, err := rt.Run(context.Background(), runtime.ContainerSpec{Name: "bystander"}); err != nil {
		t.Fatal(err)
	}
	removed, err := Down(context.Background(), one(rt), topo.Name, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 4 {
		t.Errorf("down removed %v, want the 4 containers", removed)
	}
	if left := labNames(t, rt, topo.Name); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if _, err := rt.Inspect(context.Background(), "bystander"); err != nil {
		t.Errorf("down touched a container that is not the lab's: %v", err)
	}
	if _, err := LoadState(topo.Name); err == nil {
		t.Error("down left the lab's state")
	}
}

func TestDownAfterCrashFindsContainersByLabel(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	// What a crash in the middle of up leaves: labelled containers, no state.
	for _, n := range []string{"client", "router"} {
		spec := runtime.ContainerSpec{Name: n, Labels: map[string]string{LabelLab: topo.Name, LabelNode: n}}
		if _, err := rt.Run(context.Background(), spec); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := Down(context.Background(), one(rt), topo.Name, &recorder{})
	if err != nil || len(removed) != 2 {
		t.Fatalf("down: removed %v, %v", removed, err)
	}
	// And up completes a lab left half-built.
	for _, n := range []string{"client", "router"} {
		spec := runtime.ContainerSpec{Name: n, Labels: map[string]string{LabelLab: topo.Name, LabelNode: n}}
		if _, err := rt.Run(context.Background(), spec); err != nil {
			t.Fatal(err)
		}
	}
	mustUp(t, rt, topo)
	mustVerify(t, rt, topo)
}

// noteHook is a recorder that also calls onNote with each note, as it is
// given.
type noteHook struct {
	recorder
	onNote func(string)
}

func (r *noteHook) Note(msg string) {
	r.recorder.Note(msg)
	r.onNote(msg)
}

// An up that died (its creating mark left) may have creates the engine
// completes after down looked: down watches for them and removes them.
// One that returned leaves no mark, so down does not wait.
func TestDownAfterAnUpThatDiedRemovesLateContainers(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	rep := &recorder{}
	if _, err := Up(context.Background(), one(rt), topo, rep); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(creatingFile(topo.Name)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("up returned and left its creating mark: %v", err)
	}
	if err := os.WriteFile(creatingFile(topo.Name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	late := runtime.ContainerSpec{Name: "late", Labels: map[string]string{LabelLab: topo.Name, LabelNode: "real"}}
	hook := &noteHook{onNote: func(msg string) {
		if strings.Contains(msg, "did not finish") {
			// The create the engine completes once down has looked.
			if _, err := rt.Run(context.Background(), late); err != nil {
				t.Error(err)
			}
		}
	}}
	removed, err := Down(context.Background(), one(rt), topo.Name, hook)
	if err != nil || !slices.Contains(removed, "late") || len(removed) != len(topo.Nodes)+1 {
		t.Fatalf("down: removed %v, %v; want the lab's containers and the late one", removed, err)
	}
	if left := labNames(t, rt, topo.Name); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if rec, err := Recorded(topo.Name); err != nil || rec {
		t.Errorf("the lab's record outlived down: %v", err)
	}
}

// The mark of an up that died stays until an up succeeds: one that fails
// in between leaves it, for that up's creates may still land.
func TestCreatingMarkOfAnUpThatDiedOutlivesAFailedUp(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	mustUp(t, rt, topo)
	if err := os.WriteFile(creatingFile(topo.Name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(FaultEnv, "xdp")
	if _, err := Up(context.Background(), one(rt), topo, &recorder{}); err == nil {
		t.Fatal("up with a fault succeeded")
	}
	if _, err := os.Stat(creatingFile(topo.Name)); err != nil {
		t.Errorf("a failed up took the mark of one that died: %v", err)
	}
	t.Setenv(FaultEnv, "")
	mustUp(t, rt, topo)
	if _, err := os.Stat(creatingFile(topo.Name)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an up that succeeded left the mark: %v", err)
	}
}

func TestDownOfALabThatIsNotUp(t *testing.T) {
	rt := fakeLab(t)
	rep := &recorder{}
	removed, err := Down(context.Background(), one(rt), "nothing-here", rep)
	if err != nil || len(removed) != 0 {
		t.Fatalf("down: removed %v, %v", removed, err)
	}
	if !slices.ContainsFunc(rep.notes, func(n string) bool { return strings.Contains(n, "nothing to remove") }) {
		t.Errorf("notes %v do not say there was nothing to remove", rep.notes)
	}
}

func TestNameClashIsRefusedAndTheOwnerNamed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   string
	}{
		{"foreign", nil, "was not created by dsrlab"},
		{"other lab", map[string]string{LabelLab: "other", LabelNode: "x"}, `belongs to dsrlab lab "other"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := fakeLab(t)
			if _, err := rt.Run(context.Background(), runtime.ContainerSpec{Name: "router", Labels: tc.labels}); err != nil {
				t.Fatal(err)
			}
			_, err := Up(context.Background(), one(rt), load(t, "dsr.yaml"), &recorder{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("up: %v, want %q", err, tc.want)
			}
			list, _ := rt.List(context.Background(), nil)
			if len(list) != 1 || list[0].Name != "router" {
				t.Errorf("containers after the refusal: %v", list)
			}
		})
	}
}

func TestChangedWiringNeedsReconfigure(t *testing.T) {
	rt := fakeLab(t)
	mustUp(t, rt, load(t, "dsr.yaml"))
	changed := load(t, "dsr.yaml")
	changed.Links[0].MTU = 1400
	changed.Links[0].A.MTU, changed.Links[0].B.MTU = 1400, 1400
	_, err := Up(context.Background(), one(rt), changed, &recorder{})
	if err == nil || !strings.Contains(err.Error(), "--reconfigure") {
		t.Fatalf("up of a differently wired lab: %v, want a pointer to --reconfigure", err)
	}
}

func TestWeightsChangeInPlace(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr-3reals.yaml")
	mustUp(t, rt, topo)
	v, err := FindVIP(topo, "192.168.10.1:50007")
	if err != nil {
		t.Fatal(err)
	}
	if err := SetRealWeight(topo, v, "real2", 0); err != nil {
		t.Fatal(err)
	}
	sum, _ := mustUp(t, rt, topo)
	if sum.Changes == 0 {
		t.Fatal("a drained real changed nothing")
	}
	rep, err := Inspect(context.Background(), one(rt), topo.Name)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, n := range rep.Nodes {
		if n.Balancer == nil {
			continue
		}
		for _, vr := range n.Balancer.VIPs {
			for _, r := range vr.Reals {
				if vr.VIP == "192.168.10.1:50007/tcp" && r.Addr == netip.MustParseAddr("10.111.223.11") {
					found = true
					if r.Weight != 0 {
						t.Errorf("real2 has weight %d in the balancer, want 0", r.Weight)
					}
				}
			}
		}
	}
	if !found {
		t.Errorf("real2 not among the balancer's reals: %+v", rep.Nodes)
	}
}

func TestNATLabHairpins(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "nat.yaml")
	sum, _ := mustUp(t, rt, topo)
	if len(sum.NAT) == 0 {
		t.Errorf("no NAT balancer in the summary: %+v", sum)
	}
	mustVerify(t, rt, topo)
}

func TestExecCommandsRunOnceWhenCreated(t *testing.T) {
	rt := fakeLab(t)
	marker := filepath.Join(t.TempDir(), "ran")
	topo := parseLab(t, strings.Replace(string(readLab(t, "dsr.yaml")), "  client: {kind: client}",
		fmt.Sprintf("  client: {kind: client, exec: [\"echo x >> %s\"]}", marker), 1))
	mustUp(t, rt, topo)
	mustUp(t, rt, topo)
	got, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "x\n" {
		t.Errorf("exec output %q: want the command run exactly once", got)
	}
}

func TestFailingExecFailsUpAndRollsBack(t *testing.T) {
	rt := fakeLab(t)
	topo := parseLab(t, strings.Replace(string(readLab(t, "dsr.yaml")), "  client: {kind: client}",
		"  client: {kind: client, exec: [\"echo broken >&2; exit 3\"]}", 1))
	_, err := Up(context.Background(), one(rt), topo, &recorder{})
	if err == nil || !strings.Contains(err.Error(), "exited 3") || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("up: %v, want the exit code and the command's output", err)
	}
	if left := labNames(t, rt, topo.Name); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestStatsCountTheVerifiedTraffic(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	mustUp(t, rt, topo)
	mustVerify(t, rt, topo)
	stats, err := Stats(context.Background(), one(rt), topo)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 || stats[0].Encapsulated == 0 {
		t.Errorf("stats after verify: %+v", stats)
	}
}

func readLab(t *testing.T, file string) []byte {
	t.Helper()
	data, err := os.ReadFile("../../labs/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestDualStackLabAnswersOnBothFamilies(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr-dualstack.yaml")
	mustUp(t, rt, topo)
	checks, err := Verify(context.Background(), one(rt), topo)
	if err != nil {
		t.Fatal(err)
	}
	reals := map[string]bool{}
	for _, c := range checks {
		if !c.Pass {
			t.Errorf("verify %s: %s", c.VIP, c.Reason)
		}
		reals[c.Real] = true
	}
	if !reals["real1 fd00:222::11"] && !reals["real2 fd00:223::11"] {
		t.Errorf("no IPv6 VIP answered by a real naming its IPv6 address: %v", reals)
	}
	stats, err := Stats(context.Background(), one(rt), topo)
	if err != nil {
		t.Fatal(err)
	}
	var v6 bool
	for _, v := range stats[0].VIPs {
		v6 = v6 || strings.HasPrefix(v.Name, "[fd00:10::1]") && v.Packets > 0
	}
	if !v6 {
		t.Errorf("the balancer counted no IPv6 VIP traffic: %+v", stats[0].VIPs)
	}
}

// A lab name becomes a path under the state directory: a name that climbs
// out of it is refused before anything is read or removed.
func TestLabNamesThatArePathsAreRefused(t *testing.T) {
	rt := fakeLab(t)
	keep := filepath.Join(os.Getenv("DSRLAB_STATE_DIR"), "keep")
	if err := os.WriteFile(keep, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"..", "../x", "a/b", ""} {
		if _, err := Down(context.Background(), one(rt), name, &recorder{}); err == nil {
			t.Errorf("down of lab %q succeeded", name)
		}
		if _, err := LoadState(name); err == nil || !strings.Contains(err.Error(), "not a valid lab name") {
			t.Errorf("load state of lab %q: %v", name, err)
		}
		if _, err := Lock(name); err == nil {
			t.Errorf("lock of lab %q succeeded", name)
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("the state directory lost a file: %v", err)
	}
}

// one is the engine set of a lab that lives on the local host alone.
func one(rt runtime.Runtime) runtime.Set { return runtime.Set{topology.LocalHost: rt} }

// appearsAfterPreflight makes a container named name, with labels, come
// into being just before up creates it, as the create of an up killed a
// moment before does when the engine completes it.
func appearsAfterPreflight(t *testing.T, rt *fake.Runtime, name string, labels map[string]string) {
	t.Helper()
	done := false
	rt.FailRun = func(n string) error {
		if n != name || done {
			return nil
		}
		done = true
		_, err := rt.Run(context.Background(), runtime.ContainerSpec{Name: name, Image: topology.DefaultImage, Cmd: keepalive, Labels: labels})
		return err
	}
}

func TestContainerOfAKilledUpIsAdopted(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	real := topo.Node("real")
	d := &deployment{topo: topo}
	appearsAfterPreflight(t, rt, real.ContainerName, d.labels(real))
	var mu sync.Mutex
	var said []string
	rep := &recorder{onDetail: func(step, msg string) {
		mu.Lock()
		defer mu.Unlock()
		said = append(said, step+": "+msg)
	}}
	if _, err := Up(context.Background(), one(rt), topo, rep); err != nil {
		t.Fatalf("up: %v (steps %v)", err, rep.steps)
	}
	if !slices.Contains(said, "containers: adopted (created by an up that did not finish) "+real.ContainerName) {
		t.Errorf("up does not say it adopted %s: %v", real.ContainerName, said)
	}
	if names := labNames(t, rt, topo.Name); len(names) != len(topo.Nodes) {
		t.Errorf("lab containers %v, want one per node", names)
	}
	mustVerify(t, rt, topo)
}

func TestForeignContainerAfterPreflightFailsUp(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	real := topo.Node("real")
	appearsAfterPreflight(t, rt, real.ContainerName, map[string]string{"owner": "someone else"})
	_, err := Up(context.Background(), one(rt), topo, &recorder{})
	if err == nil || !strings.Contains(err.Error(), `node real: a container named "real" already exists and was not created by dsrlab`) {
		t.Fatalf("up: %v, want the name taken, its owner named, for node real", err)
	}
	if left := labNames(t, rt, topo.Name); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if c, err := rt.Inspect(context.Background(), real.ContainerName); err != nil || c.Labels["owner"] != "someone else" {
		t.Errorf("the other container: %v, %v", c, err)
	}
}

// A fake lab's down leaves the host's namespace names alone: unit tests run
// beside the e2e suite, whose labs may have containers of the same names
// (a controller found its katran by that name, and lost it).
func TestFakeLabLeavesTheHostsNamespaceNamesAlone(t *testing.T) {
	rt := fakeLab(t)
	data, err := os.ReadFile("../../labs/dsr.yaml")
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("u%d-", os.Getpid())
	file := filepath.Join(t.TempDir(), "lab.yaml")
	if err := os.WriteFile(file, []byte(strings.Replace(string(data), `prefix: ""`, `prefix: "`+prefix+`"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	// The name a real lab's up gives its katran's namespace.
	link := filepath.Join("/run/netns", topo.Node("katran").ContainerName)
	if err := os.MkdirAll("/run/netns", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/proc/1/ns/net", link); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(link)
	mustUp(t, rt, topo)
	if _, err := Down(context.Background(), one(rt), topo.Name, &recorder{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); err != nil {
		t.Errorf("the fake lab's down took the host's %s: %v", link, err)
	}
}
