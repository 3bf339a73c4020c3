package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/dsrlab/dsrlab/bpf/prog"
	"github.com/dsrlab/dsrlab/examples"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// These tests bring up labs running a user's own XDP program (the examples)
// on the fake runtime: compiled by clang, loaded into the kernel, maps
// filled by BTF field names, and proven by Verify through real veths.

func requireClang(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("clang"); err != nil {
		t.Skip("needs clang to compile the example programs (scripts/install-deps.sh --clang)")
	}
}

// example writes an example into a temporary directory, so a test can
// edit its program, and loads its topology from there.
func example(t *testing.T, name string) (*topology.Topology, string) {
	t.Helper()
	requireClang(t)
	t.Setenv("DSRLAB_CACHE_DIR", t.TempDir())
	dir := t.TempDir()
	if err := examples.Write(name, dir); err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Load(filepath.Join(dir, "lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return topo, dir
}

func nodeMap(t *testing.T, rt runtime.Runtime, topo *topology.Topology, node, name string) *prog.Map {
	t.Helper()
	maps, err := NodeMaps(context.Background(), one(rt), topo, node)
	if err != nil {
		t.Fatal(err)
	}
	var found *prog.Map
	for _, m := range maps {
		if m.Name == name {
			found = m
		} else {
			m.Close()
		}
	}
	if found == nil {
		t.Fatalf("node %s has no map %s", node, name)
	}
	t.Cleanup(func() { found.Close() })
	return found
}

func TestUserBalancerAnswersThroughTheVIP(t *testing.T) {
	rt := fakeLab(t)
	topo, _ := example(t, "xdp-lb-minimal")
	sum, rep := mustUp(t, rt, topo)
	if !slices.Contains(rep.steps, "programs") {
		t.Errorf("no programs step in %v", rep.steps)
	}
	if !strings.Contains(sum.XDP["katran"], "xdp_load_balancer") {
		t.Errorf("katran's XDP is %q, want the user's program", sum.XDP["katran"])
	}
	mustVerify(t, rt, topo)

	insp, err := Inspect(context.Background(), one(rt), topo.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(insp.Problems) > 0 {
		t.Errorf("inspect finds problems: %v", insp.Problems)
	}
	for _, n := range insp.Nodes {
		if n.Node != "katran" {
			continue
		}
		if len(n.Programs) != 1 || n.Programs[0].Name != "xdp_load_balancer" || n.Programs[0].File != topo.Node("katran").Program.Source || n.Programs[0].Tag == "" {
			t.Errorf("katran's programs: %+v", n.Programs)
		}
		if n.Balancer != nil {
			t.Error("the built-in balancer is attached beside the user's")
		}
	}

	entries, _, err := nodeMap(t, rt, topo, "katran", "lb_map").Dump(context.Background(), prog.DumpOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || !strings.Contains(entries[0].ValueString(), "real_server_ip: 10.111.222.11") {
		t.Errorf("lb_map: %v", entries)
	}

	again, _ := mustUp(t, rt, topo)
	if again.Changes != 0 {
		t.Errorf("up of an unchanged program made %d changes", again.Changes)
	}
}

func TestEditedProgramIsReplacedInPlace(t *testing.T) {
	rt := fakeLab(t)
	topo, dir := example(t, "xdp-lb-minimal")
	mustUp(t, rt, topo)
	before := labNames(t, rt, topo.Name)
	id := func() uint32 {
		ns, err := NodeNamespace(context.Background(), one(rt), topo, "katran")
		if err != nil {
			t.Fatal(err)
		}
		defer ns.Close()
		att, err := ns.XDP("eth0")
		if err != nil {
			t.Fatal(err)
		}
		return att.ProgID
	}
	oldID := id()

	src := filepath.Join(dir, "xdp_lb.c")
	code, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	// Another outer TTL: a real edit, so the object changes.
	edited := strings.Replace(string(code), "ttl = 64", "ttl = 63", 1)
	if edited == string(code) {
		t.Fatal("the example no longer sets ttl = 64; update this test's edit")
	}
	if err := os.WriteFile(src, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, _ := mustUp(t, rt, topo)
	if sum.Changes == 0 {
		t.Fatal("an edited program was not replaced")
	}
	if newID := id(); newID == oldID || newID == 0 {
		t.Errorf("program %d before the edit, %d after", oldID, newID)
	}
	if after := labNames(t, rt, topo.Name); !slices.Equal(before, after) {
		t.Errorf("a program reload touched containers: %v, then %v", before, after)
	}
	mustVerify(t, rt, topo)
}

// A program's globals are set at load from the topology; other values
// on a running lab load it again (constants cannot change in place), the
// same ones change nothing.
func TestGlobalsSetAtLoadAndChangedByReload(t *testing.T) {
	rt := fakeLab(t)
	_, dir := example(t, "xdp-lb-minimal")
	src := filepath.Join(dir, "xdp_lb.c")
	code, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(code), "outer->ttl = 64;", "outer->ttl = outer_ttl;", 1)
	edited = strings.Replace(edited, "SEC(\"xdp\")", "const volatile __u8 outer_ttl = 64;\n\nSEC(\"xdp\")", 1)
	if edited == string(code) || strings.Count(edited, "outer_ttl") != 2 {
		t.Fatal("the example no longer sets outer->ttl = 64 before SEC(\"xdp\"); update this test's edit")
	}
	if err := os.WriteFile(src, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "lab.yaml")
	lab, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	withTTL := func(ttl int) *topology.Topology {
		t.Helper()
		text := strings.Replace(string(lab), "      name: xdp_load_balancer\n", fmt.Sprintf("      name: xdp_load_balancer\n      globals: {outer_ttl: %d}\n", ttl), 1)
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		topo, err := topology.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		return topo
	}
	rodata := func(topo *topology.Topology) string {
		t.Helper()
		entries, _, err := nodeMap(t, rt, topo, "katran", ".rodata").Dump(context.Background(), prog.DumpOptions{All: true})
		if err != nil || len(entries) != 1 {
			t.Fatalf(".rodata: %v, %v", entries, err)
		}
		return entries[0].ValueString()
	}
	topo := withTTL(63)
	mustUp(t, rt, topo)
	mustVerify(t, rt, topo)
	if v := rodata(topo); !strings.Contains(v, "outer_ttl: 63") {
		t.Errorf(".rodata holds %s, want outer_ttl: 63", v)
	}
	if sum, _ := mustUp(t, rt, topo); sum.Changes != 0 {
		t.Errorf("up with the same globals made %d changes", sum.Changes)
	}
	topo = withTTL(62)
	if sum, _ := mustUp(t, rt, topo); sum.Changes == 0 {
		t.Error("other globals did not reload the program")
	}
	if v := rodata(topo); !strings.Contains(v, "outer_ttl: 62") {
		t.Errorf(".rodata holds %s after the change, want outer_ttl: 62", v)
	}
	mustVerify(t, rt, topo)
}

func TestMapSetMovesTrafficToAnotherReal(t *testing.T) {
	rt := fakeLab(t)
	topo, _ := example(t, "xdp-lb-hash")
	mustUp(t, rt, topo)
	reals := nodeMap(t, rt, topo, "katran", "reals")
	for _, k := range []string{"0", "1", "2"} {
		if err := reals.Set(k, "{addr: real3:eth0}", Resolver(topo)); err != nil {
			t.Fatal(err)
		}
	}
	checks, err := Verify(context.Background(), one(rt), topo)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if !c.Pass || !strings.HasPrefix(c.Real, "real3 ") {
			t.Errorf("after map set, %s was answered by %q (%s)", c.VIP, c.Real, c.Reason)
		}
	}
	// up writes the file's entries back: the spread over three reals.
	sum, _ := mustUp(t, rt, topo)
	if sum.Changes != 1 {
		t.Errorf("up after map set made %d changes, want 1 (the map written again)", sum.Changes)
	}
	stats := nodeMap(t, rt, topo, "katran", "real_stats")
	entries, _, err := stats.Dump(context.Background(), prog.DumpOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 || entries[0].PerCPU == nil {
		t.Errorf("real_stats is not shown per CPU: %v", entries)
	}
}

// Bad programs fail in the programs step, before any container exists,
// with the topology file's position and the tool's own words.
func TestBadProgramsFailBeforeAnythingIsCreated(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(t *testing.T, dir string, lab string) string // returns the new lab.yaml
		wants []string
	}{
		{"source missing", func(_ *testing.T, _, lab string) string {
			return strings.Replace(lab, "source: xdp_lb.c", "source: nowhere.c", 1)
		}, []string{"lab.yaml:24:", "nowhere.c"}},
		{"compile error", func(t *testing.T, dir, lab string) string {
			appendTo(t, filepath.Join(dir, "xdp_lb.c"), "\nint broken(void) { return undefined_thing; }\n")
			return lab
		}, []string{"lab.yaml:24:", "xdp_lb.c:", "error:", "undefined_thing"}},
		{"program name absent", func(_ *testing.T, _, lab string) string {
			return strings.Replace(lab, "name: xdp_load_balancer", "name: xdp_nothing", 1)
		}, []string{"xdp_lb.c:", "xdp_nothing", "xdp_load_balancer"}},
		{"map absent", func(_ *testing.T, _, lab string) string {
			return strings.Replace(lab, "        lb_map:", "        lb_mapp:", 1)
		}, []string{"xdp_lb.c", "lb_mapp", "lb_map"}},
		{"field absent", func(_ *testing.T, _, lab string) string {
			return strings.Replace(lab, "lb_vip: 192.168.10.1", "lb_vipp: 192.168.10.1", 1)
		}, []string{"lab.yaml:31:", "lb_vipp", "real_server_ip"}},
		{"value does not fit", func(_ *testing.T, _, lab string) string {
			return strings.Replace(lab, "src_mac: katran:eth0", "src_mac: 10.0.0.1", 1)
		}, []string{"lab.yaml:32:", "src_mac"}},
		{"global absent", func(_ *testing.T, _, lab string) string {
			return strings.Replace(lab, "      name: xdp_load_balancer\n", "      name: xdp_load_balancer\n      globals: {outer_ttl: 1}\n", 1)
		}, []string{"lab.yaml:26:", "nodes.katran.program.globals.outer_ttl", `no global variable "outer_ttl"`, "its globals: (none)"}},
		{"alias placed where it is used", func(_ *testing.T, _, lab string) string {
			lab = strings.Replace(lab, "lb_vip: 192.168.10.1", "lb_vip: &vip 192.168.10.1", 1)
			return strings.Replace(lab, "src_mac: katran:eth0", "src_mac: *vip", 1)
		}, []string{"lab.yaml:32:", "src_mac", "(in *vip, anchored at line 31)"}},
		{"key given twice", func(_ *testing.T, _, lab string) string {
			return strings.Replace(lab, "  real: {kind: real}\n", "          - {key: 0, value: {lb_vip: 1.2.3.4}}\n  real: {kind: real}\n", 1)
		}, []string{"lab.yaml:34:", "lb_map[1].key: the same key as lb_map[0] (line 28)"}},
		{"reference names nothing", func(_ *testing.T, _, lab string) string {
			return strings.Replace(lab, "real_server_ip: real:eth0", "real_server_ip: real:eth9", 1)
		}, []string{"lab.yaml:30:", "eth9"}},
		{"verifier rejection", func(t *testing.T, dir, lab string) string {
			src := filepath.Join(dir, "xdp_lb.c")
			code, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			// Drop the bounds check on the Ethernet header: the
			// verifier must refuse the packet access after it.
			i := strings.Index(string(code), "if ((void *)(eth + 1) > data_end)")
			if i < 0 {
				t.Fatal("the example no longer checks the Ethernet header's bounds; update this test")
			}
			code = []byte(string(code[:i]) + "if (0)" + string(code[i+len("if ((void *)(eth + 1) > data_end)"):]))
			if err := os.WriteFile(src, code, 0o644); err != nil {
				t.Fatal(err)
			}
			return lab
		}, []string{"lab.yaml:24:", "xdp_lb.c:", "invalid access to packet"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := fakeLab(t)
			_, dir := example(t, "xdp-lb-minimal")
			file := filepath.Join(dir, "lab.yaml")
			lab, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(tc.edit(t, dir, string(lab))), 0o644); err != nil {
				t.Fatal(err)
			}
			topo, err := topology.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			rep := &recorder{}
			_, err = Up(context.Background(), one(rt), topo, rep)
			if err == nil {
				t.Fatal("up succeeded")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), cacheDir()) {
				t.Errorf("error names dsrlab's cache, not the user's file:\n%v", err)
			}
			if !slices.Equal(rep.steps, []string{"programs FAILED"}) {
				t.Errorf("steps %v: want the programs step to fail first", rep.steps)
			}
			if _, err := os.Stat(hostsFile(topo.Name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed up of a new lab left its hosts record: %v", err)
			}
			if left := labNames(t, rt, topo.Name); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

func appendTo(t *testing.T, file, text string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// Adding or moving a program on a running lab rewires it: up says so
// instead of fighting the program that is attached.
func TestProgramPlacementIsWiring(t *testing.T) {
	rt := fakeLab(t)
	mustUp(t, rt, load(t, "dsr.yaml"))
	_, dir := example(t, "xdp-lb-minimal")
	data, err := os.ReadFile(filepath.Join(dir, "lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The reference lab, now with a program on katran.
	topo, err := topology.Parse([]byte(strings.Replace(string(data), "name: xdp-minimal", "name: dsr", 1)), filepath.Join(dir, "lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Up(context.Background(), one(rt), topo, &recorder{})
	if err == nil || !strings.Contains(err.Error(), "program-on") || !strings.Contains(err.Error(), "--reconfigure") {
		t.Fatalf("up: %v, want the program's placement named as a wiring change", err)
	}
}

func TestResolverPicksByFieldSize(t *testing.T) {
	dual := load(t, "dsr-dualstack.yaml")
	v4only := load(t, "dsr.yaml")
	for _, tc := range []struct {
		topo *topology.Topology
		ref  string
		size int
		want string // hex, or the error's words
	}{
		{dual, "real1:eth0", 4, "0a6fde0b"},
		{dual, "real1:eth0", 16, "fd000222000000000000000000000011"},
		{dual, "real1:eth0", 6, hexOf(dual.Node("real1").Interfaces[0].MAC)},
		{v4only, "real:eth0", 16, "has no IPv6 address"},
		{dual, "real1:eth9", 4, `no interface "eth9"`},
		{dual, "ghost:eth0", 4, "names no node:interface"},
		{dual, "real1:eth0", 8, "not 8 bytes"},
	} {
		got, err := Resolver(tc.topo)(tc.ref, tc.size)
		switch {
		case err != nil && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s (%d bytes): %v, want %q", tc.ref, tc.size, err, tc.want)
		case err == nil && hexOf(got) != tc.want:
			t.Errorf("%s (%d bytes) = %s, want %s", tc.ref, tc.size, hexOf(got), tc.want)
		}
	}
}

func hexOf(b []byte) string { return fmt.Sprintf("%x", b) }

// A user's program on the router's side of katran's link takes the place
// of the XDP_PASS stub the balancer's native XDP_TX needs there, and the
// lab still answers.
func TestUserProgramBesideTheBalancer(t *testing.T) {
	requireClang(t)
	rt := fakeLab(t)
	t.Setenv("DSRLAB_CACHE_DIR", t.TempDir())
	src, err := filepath.Abs("testdata/count.c")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(readLab(t, "dsr.yaml")), "  router: {kind: router}",
		fmt.Sprintf("  router: {kind: router, program: {source: %q, interface: eth0}}", src), 1)
	topo := parseLab(t, text)
	mustUp(t, rt, topo)
	mustVerify(t, rt, topo)
	entries, _, err := nodeMap(t, rt, topo, "router", "frames").Dump(context.Background(), prog.DumpOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Value.String() == "0" {
		t.Errorf("the router's program counted nothing: %v", entries)
	}
	if sum, _ := mustUp(t, rt, topo); sum.Changes != 0 {
		t.Errorf("a second up made %d changes", sum.Changes)
	}
}

// A program array's entries from the topology are written at load by
// program name; other entries load the program again, the same change
// nothing.
func TestTailCallEntriesFromTheTopology(t *testing.T) {
	requireClang(t)
	rt := fakeLab(t)
	t.Setenv("DSRLAB_CACHE_DIR", t.TempDir())
	src, err := filepath.Abs("testdata/tailcount.c")
	if err != nil {
		t.Fatal(err)
	}
	withSlot := func(slot int) *topology.Topology {
		t.Helper()
		program := fmt.Sprintf("{source: %q, name: xdp_entry, interface: eth0, globals: {slot: %d}, maps: {jmp: [{key: %d, value: xdp_count}]}}", src, slot, slot)
		return parseLab(t, strings.Replace(string(readLab(t, "dsr.yaml")), "  router: {kind: router}", "  router: {kind: router, program: "+program+"}", 1))
	}
	topo := withSlot(0)
	// A failed up of a new lab takes its pins back with its containers.
	t.Setenv(FaultEnv, "nat")
	if _, err := Up(context.Background(), one(rt), topo, &recorder{}); err == nil {
		t.Fatal("up with a fault after the xdp step succeeded")
	}
	if _, err := os.Stat(filepath.Join(pinRoot(), topo.Name, "router", "jmp")); err == nil {
		t.Error("a rolled back up left its pins")
	}
	noPinRoot(t)
	t.Setenv(FaultEnv, "")
	mustUp(t, rt, topo)
	mustVerify(t, rt, topo)
	frames, _, err := nodeMap(t, rt, topo, "router", "frames").Dump(context.Background(), prog.DumpOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 1 || frames[0].Value.String() == "0" {
		t.Errorf("the tail-called program counted nothing: %v", frames)
	}
	jmp, _, err := nodeMap(t, rt, topo, "router", "jmp").Dump(context.Background(), prog.DumpOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(jmp) != 1 || !strings.HasPrefix(jmp[0].String(), "0: xdp_count (id ") {
		t.Errorf("jmp: %v, want slot 0 naming xdp_count", jmp)
	}
	if sum, _ := mustUp(t, rt, topo); sum.Changes != 0 {
		t.Errorf("a second up made %d changes", sum.Changes)
	}
	topo = withSlot(1)
	if sum, _ := mustUp(t, rt, topo); sum.Changes == 0 {
		t.Error("another program array entry did not load the program again")
	}
	jmp, _, err = nodeMap(t, rt, topo, "router", "jmp").Dump(context.Background(), prog.DumpOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(jmp) != 1 || !strings.HasPrefix(jmp[0].String(), "1: xdp_count (id ") {
		t.Errorf("jmp after the change: %v, want slot 1 naming xdp_count", jmp)
	}
	mustVerify(t, rt, topo)

	// A pin that is not the running program's array (left by another
	// load) is no pin: up loads the program again and pins its own.
	pin := filepath.Join(pinRoot(), topo.Name, "router", "jmp")
	other, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := os.Remove(pin); err != nil {
		t.Fatal(err)
	}
	if err := other.Pin(pin); err != nil {
		t.Fatal(err)
	}
	if sum, _ := mustUp(t, rt, topo); sum.Changes == 0 {
		t.Error("up kept a program whose array is not pinned")
	}
	if sum, _ := mustUp(t, rt, topo); sum.Changes != 0 {
		t.Errorf("up after pinning again made %d changes", sum.Changes)
	}
	mustVerify(t, rt, topo)
	if _, err := Down(context.Background(), one(rt), topo.Name, &recorder{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(pinRoot(), topo.Name)); err == nil {
		t.Error("down left the lab's pins")
	}
	noPinRoot(t)
}

// noPinRoot checks that the pins' bpffs is unmounted and gone, with its
// lock, once no lab has pins.
func noPinRoot(t *testing.T) {
	t.Helper()
	for _, path := range []string{pinRoot(), pinRoot() + ".lock"} {
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still there with no lab's pins in it: %v", path, err)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), " "+pinRoot()+" ") {
		t.Errorf("a bpffs is still mounted on %s", pinRoot())
	}
}

// A TC egress program on a real counts the replies it sends per client,
// read through NodeMaps like any map; up twice changes nothing; a program
// taken out of the topology is taken off its hook.
func TestTCProgramCountsRepliesPerClient(t *testing.T) {
	requireClang(t)
	rt := fakeLab(t)
	t.Setenv("DSRLAB_CACHE_DIR", t.TempDir())
	src, err := filepath.Abs("testdata/replies.c")
	if err != nil {
		t.Fatal(err)
	}
	reference := string(readLab(t, "dsr.yaml"))
	block := fmt.Sprintf("  real:\n    kind: real\n    programs:\n      - {source: %q, name: tc_count_replies, type: tc, direction: egress}\n", src)
	if !strings.Contains(reference, "  real:   {kind: real}\n") {
		t.Fatal("the reference lab's real is no longer `real:   {kind: real}`; update this test")
	}
	topo := parseLab(t, strings.Replace(reference, "  real:   {kind: real}\n", block, 1))
	sum, _ := mustUp(t, rt, topo)
	mustVerify(t, rt, topo)
	entries, _, err := nodeMap(t, rt, topo, "real", "replies").Dump(context.Background(), prog.DumpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var client []string
	for _, e := range entries {
		if e.Key.String() == "10.111.220.11" && e.Value.String() != "0" {
			client = append(client, e.String())
		}
	}
	if len(client) != 1 {
		t.Errorf("replies: %v, want packets counted to the client 10.111.220.11", entries)
	}
	if sum.Changes == 0 {
		t.Error("up attached nothing")
	}
	if again, _ := mustUp(t, rt, topo); again.Changes != 0 {
		t.Errorf("a second up made %d changes", again.Changes)
	}
	ns, err := NodeNamespace(context.Background(), one(rt), topo, "real")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	atts, err := ns.TC("eth0")
	if err != nil || len(atts) != 1 || atts[0].Name != "tc_count_replies" || !atts[0].Egress || atts[0].Priority != 1 {
		t.Fatalf("eth0's TC programs: %+v, %v", atts, err)
	}
	insp, err := Inspect(context.Background(), one(rt), topo.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(insp.Problems) > 0 {
		t.Errorf("inspect finds problems: %v", insp.Problems)
	}
	for _, n := range insp.Nodes {
		if n.Node == "real" && !slices.ContainsFunc(n.Programs, func(p ProgramReport) bool {
			return p.Name == "tc_count_replies" && p.File == src && p.Mode == "tc egress priority 1" && p.Interface == "eth0"
		}) {
			t.Errorf("inspect does not show the TC program: %+v", n.Programs)
		}
	}
	// A global set only at load: the program is replaced at its
	// priority, in one request.
	reloaded := parseLab(t, strings.Replace(reference, "  real:   {kind: real}\n",
		strings.Replace(block, "direction: egress}", "direction: egress, globals: {blocked_port: 9}}", 1), 1))
	if again, _ := mustUp(t, rt, reloaded); again.Changes == 0 {
		t.Error("up with a new global changed nothing")
	}
	if now, err := ns.TC("eth0"); err != nil || len(now) != 1 || now[0].ProgID == atts[0].ProgID {
		t.Errorf("after the reload: %+v, %v; want one program, another than %d", now, err, atts[0].ProgID)
	}
	without := parseLab(t, reference)
	if again, _ := mustUp(t, rt, without); again.Changes == 0 {
		t.Error("up without the TC program changed nothing")
	}
	if atts, err := ns.TC("eth0"); err != nil || len(atts) != 0 {
		t.Errorf("eth0's TC programs after it left the topology: %+v, %v", atts, err)
	}
}

// A TC program's program array is pinned, so its tail calls go on after up
// exits; a rolled back up takes the pins back.
func TestTCTailCalls(t *testing.T) {
	requireClang(t)
	rt := fakeLab(t)
	t.Setenv("DSRLAB_CACHE_DIR", t.TempDir())
	src, err := filepath.Abs("testdata/tctail.c")
	if err != nil {
		t.Fatal(err)
	}
	block := fmt.Sprintf("  real:\n    kind: real\n    programs: [{source: %q, name: tc_entry, type: tc, direction: egress, maps: {next: [{key: 0, value: tc_count}]}}]\n", src)
	topo := parseLab(t, strings.Replace(string(readLab(t, "dsr.yaml")), "  real:   {kind: real}\n", block, 1))
	pins := filepath.Join(pinRoot(), topo.Name, "_tc", "real-tc-eth0-egress-1")
	t.Setenv(FaultEnv, "nat")
	if _, err := Up(context.Background(), one(rt), topo, &recorder{}); err == nil {
		t.Fatal("up with a fault after the tc step succeeded")
	}
	if _, err := os.Stat(pins); err == nil {
		t.Error("a rolled back up left the TC program's pins")
	}
	t.Setenv(FaultEnv, "")
	mustUp(t, rt, topo)
	if _, err := os.Stat(filepath.Join(pins, "next")); err != nil {
		t.Errorf("the program array is not pinned: %v", err)
	}
	mustVerify(t, rt, topo)
	sent, _, err := nodeMap(t, rt, topo, "real", "sent").Dump(context.Background(), prog.DumpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 {
		t.Errorf("the tail-called TC program counted nothing: %v", sent)
	}
	if sum, _ := mustUp(t, rt, topo); sum.Changes != 0 {
		t.Errorf("a second up made %d changes", sum.Changes)
	}
}

// A balancer built the way Katran's is comes up from a topology written as
// a person reads it, answers through the VIP, and its maps read back the
// way the topology wrote them.
func TestKatranStyleBalancer(t *testing.T) {
	requireClang(t)
	rt := fakeLab(t)
	t.Setenv("DSRLAB_CACHE_DIR", t.TempDir())
	topo, err := topology.Load("testdata/katranlike/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mustUp(t, rt, topo)
	mustVerify(t, rt, topo)
	for _, tc := range []struct{ name, want string }{
		{"vip_map", "{vip: 192.168.10.1, port: !be 50007, proto: 6}: {flags: 0, vip_num: 0}"},
		{"reals", "0: {dst: 10.111.222.11, flags: 0}"},
		{"ctl_array", "1: {mac: " + topo.Node("katran").Uplink().MAC.String() + "}"},
		{"lru_mapping", "0: unnamed (id "},
	} {
		entries, _, err := nodeMap(t, rt, topo, "katran", tc.name).Dump(context.Background(), prog.DumpOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v", tc.name, entries)
		if !slices.ContainsFunc(entries, func(e prog.DumpEntry) bool { return strings.HasPrefix(e.String(), tc.want) }) {
			t.Errorf("%s: %v, want an entry %q", tc.name, entries, tc.want)
		}
	}
	if again, _ := mustUp(t, rt, topo); again.Changes != 0 {
		t.Errorf("a second up made %d changes", again.Changes)
	}
}
