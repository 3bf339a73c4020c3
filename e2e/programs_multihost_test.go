package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/internal/image"
	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// The simulated host of the tests of users' programs on another host.
const (
	progHost      = "e2h5"
	progHostIndex = 4
)

// jumboHosts is the hosts block of the local host and progHost with a
// jumbo underlay (scripts/host.sh gives it): links to a katran or real
// keep room for IPIP over VXLAN, which the examples' balancers, unlike
// dsrlab's, do not ask clients to make for them (ICMP frag-needed).
var jumboHosts = fmt.Sprintf("hosts:\n  local: {underlay: %s, mtu: 9000}\n  %s: {docker: %q, underlay: 172.31.255.%d, mtu: 9000}\n",
	localUnderlay, progHost, hostEngine(progHost), 1+progHostIndex)

// hashExampleOnAnotherHost copies the hash example with its katran and
// real3 on progHost, and returns its topology file.
func hashExampleOnAnotherHost(t *testing.T, name, prefix string) (string, *topology.Topology) {
	t.Helper()
	file, topo := copyExample(t, "xdp-lb-hash", name, prefix)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "prefix: \""+prefix+"\"\n", "prefix: \""+prefix+"\"\n"+jumboHosts, 1)
	text = strings.Replace(text, "    kind: katran\n", "    kind: katran\n    host: "+progHost+"\n", 1)
	text = strings.Replace(text, "  real3: {kind: real}", "  real3: {kind: real, host: "+progHost+"}", 1)
	if strings.Count(text, "host: "+progHost) != 2 {
		t.Fatal("examples/xdp-lb-hash/lab.yaml changed: this test no longer moves katran and real3")
	}
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, topo
}

// editSource replaces old with new in the example's xdp_lb.c beside file.
func editSource(t *testing.T, file, old, new string) {
	t.Helper()
	src := filepath.Join(filepath.Dir(file), "xdp_lb.c")
	code, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(code), old, new, 1)
	if edited == string(code) {
		t.Fatalf("%s has no %q any more: update this test's edit", src, old)
	}
	if err := os.WriteFile(src, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOwnProgramRejectedOnAnotherHost: the kernel of katran's host
// verifies the user's program before any node container exists, and its
// rejection names the source line and the topology file's own line.
func TestOwnProgramRejectedOnAnotherHost(t *testing.T) {
	requireSetup(t)
	remote := startHost(t, progHost, progHostIndex)
	file, topo := hashExampleOnAnotherHost(t, "own-mhr", "omhr-")
	// The Ethernet header's bounds check, which the verifier insists on.
	editSource(t, file, "if ((void *)(eth + 1) > data_end)", "if (0)")
	out, err := dsrlab(t, "up", "-t", file)
	if err == nil {
		t.Fatal("up succeeded with a program the verifier rejects")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	line := 1 + strings.Count(string(data[:strings.Index(string(data), "source: xdp_lb.c")]), "\n")
	at := fmt.Sprintf("lab.yaml:%d:", line)
	for _, want := range []string{"Error: agents: host " + progHost, at, "xdp_lb.c:", "invalid access to packet"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "containers  ") {
		t.Error("node containers were created before the program was verified")
	}
	assertNothingLeft(t, topo)
	if left := labContainersOn(t, remote, topo.Name); len(left) > 0 {
		t.Errorf("left on the other host: %v", left)
	}
}

// TestOwnProgramOnAnotherHost: the user's balancer, compiled here, is
// loaded by the kernel of the host its katran runs on, configured from the
// topology there, read and changed by `map` there, shown by inspect and
// replaced after an edit; nothing is left on either engine after down.
func TestOwnProgramOnAnotherHost(t *testing.T) {
	requireSetup(t)
	remote := startHost(t, progHost, progHostIndex)
	file, _ := hashExampleOnAnotherHost(t, "own-mh", "omh-")

	out, err := dsrlab(t, "up", "-t", file)
	if err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	if !strings.Contains(out, "xdp_lb_hash") {
		t.Errorf("up does not name the user's program:\n%s", out)
	}
	if names := strings.Join(labContainersOn(t, remote, "own-mh"), " "); !strings.Contains(names, "omh-katran") {
		t.Fatalf("the other engine runs %s, want katran", names)
	}
	reals := map[string]bool{}
	for range 12 {
		reals[realOf(dockerExec(t, "hi\n", "omh-client", "nc", vip, vipPort))] = true
	}
	if len(reals) < 2 {
		t.Errorf("the user's balancer on the other host answered from %v only", reals)
	}

	// Client here, balancer there: verify reads the balancer's counters
	// through the other host's agent.
	if out, err := dsrlab(t, "verify", "--name", "own-mh"); err != nil || strings.Contains(out, "skipped") {
		t.Errorf("verify of a client and a balancer on different hosts: %v\n%s", err, out)
	}

	out, err = dsrlab(t, "map", "--name", "own-mh", "katran", "reals")
	if err != nil || !strings.Contains(out, "addr: 10.111.222.11") || !strings.Contains(out, "addr: 10.111.224.11") {
		t.Errorf("map of the program on the other host: %v\n%s", err, out)
	}
	for _, k := range []string{"0", "1", "2"} {
		if out, err := dsrlab(t, "map", "--name", "own-mh", "katran", "reals", "set", k, "{addr: real1:eth0}"); err != nil {
			t.Fatalf("map set on the other host: %v\n%s", err, out)
		}
	}
	for i := range 5 {
		if got := dockerExec(t, "hi\n", "omh-client", "nc", vip, vipPort); realOf(got) != "real1" {
			t.Errorf("connection %d after map set answered %q, want real1", i, got)
		}
	}
	if out, err := dsrlab(t, "map", "--name", "own-mh", "katran", "nosuch"); err == nil || !strings.Contains(out, `no map "nosuch"`) {
		t.Errorf("map of an unknown map on the other host: %v\n%s", err, out)
	}
	out, err = dsrlab(t, "inspect", "--name", "own-mh", "--format", "json")
	if err != nil || !strings.Contains(out, `"name": "xdp_lb_hash"`) || !strings.Contains(out, "xdp_lb.c") {
		t.Errorf("inspect does not show the user's program on the other host: %v\n%s", err, out)
	}

	// up puts the topology's entries back (keys 1 and 2; key 0 was
	// real1's already) and otherwise leaves the running program alone.
	out, err = dsrlab(t, "up", "-v", "-t", file)
	if err != nil || !strings.Contains(out, "e2h5: katran: 2 map entries written again") {
		t.Errorf("up after map set: %v\n%s", err, out)
	}
	if out, err = dsrlab(t, "up", "-t", file); err != nil || !strings.Contains(out, "nothing changed") {
		t.Errorf("a second up of an unchanged program: %v\n%s", err, out)
	}

	editSource(t, file, "ttl = 64", "ttl = 63")
	out, err = dsrlab(t, "up", "-v", "-t", file)
	if err != nil || !strings.Contains(out, "replaced xdp_lb_hash") {
		t.Fatalf("up after an edit: %v\n%s", err, out)
	}
	if got := dockerExec(t, "again\n", "omh-client", "nc", vip, vipPort); !strings.Contains(got, "): again") {
		t.Errorf("after the reload on the other host the VIP answered %q", got)
	}

	downLeavesNothing(t, remote, "own-mh")
}

// TestClientOnAnotherHost: a client whose link to the router is a VXLAN
// tunnel reaches the VIP, and verify probes from it through its host's
// agent while it reads the balancer here.
func TestClientOnAnotherHost(t *testing.T) {
	requireSetup(t)
	remote := startHost(t, progHost, progHostIndex)
	file := traceLab(t, []byte(referenceText()), "mhc", "mhc-", "defaults:", hostsBlockWith(progHost, progHostIndex)+"defaults:",
		"client: {kind: client}", "client: {kind: client, host: "+progHost+"}")
	out, err := dsrlab(t, "exec", "--name", "mhc", "client", "--", "sh", "-c", "echo hello | nc "+vip+" "+vipPort)
	if err != nil || !strings.Contains(out, "): hello") {
		t.Errorf("the VIP from a client on the other host: %v\n%s", err, out)
	}
	out, err = dsrlab(t, "verify", "--name", "mhc")
	if err != nil || strings.Contains(out, "skipped") {
		t.Errorf("verify from a client on the other host: %v\n%s", err, out)
	}

	// An agent started from an older node image runs an older dsrlab,
	// which would not know what this one asks: up replaces it.
	ctx := context.Background()
	agents, err := remote.List(ctx, map[string]string{lab.LabelLab: "mhc", lab.LabelRole: "agent"})
	if err != nil || len(agents) != 1 {
		t.Fatalf("agents on the other host: %v %v", agents, err)
	}
	if err := remote.Remove(ctx, agents[0].ID); err != nil {
		t.Fatal(err)
	}
	_, err = remote.Run(ctx, runtime.ContainerSpec{
		Name: agents[0].Name, Image: topology.DefaultImage, Cmd: []string{"/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"},
		Labels:      map[string]string{lab.LabelLab: "mhc", lab.LabelRole: "agent", lab.LabelHost: progHost, image.DigestLabel: "older"},
		HostNetwork: true, HostPID: true, CapAdd: []string{"NET_ADMIN", "SYS_ADMIN"},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err = dsrlab(t, "up", "-v", "-t", file)
	if err != nil || !strings.Contains(out, "removed the agent of another dsrlab on host "+progHost) {
		t.Errorf("up with an older agent: %v\n%s", err, out)
	}
	if out, err := dsrlab(t, "verify", "--name", "mhc"); err != nil {
		t.Errorf("verify through the new agent: %v\n%s", err, out)
	}

	downLeavesNothing(t, remote, "mhc")
}

// TestOwnDecapOnAnotherHost: a real of the other host decapsulates with
// the user's own program (here dsrlab's committed decap object, as a user
// starting from it would), loaded by that host's kernel in the reals'
// phase, before any balancer sends it traffic.
func TestOwnDecapOnAnotherHost(t *testing.T) {
	requireSetup(t)
	remote := startHost(t, progHost, progHostIndex)
	object, err := filepath.Abs("../bpf/decap_bpfel.o")
	if err != nil {
		t.Fatal(err)
	}
	real := "real:\n    kind: real\n    host: " + progHost + "\n    program:\n      object: " + object +
		"\n      name: xdp_decap\n      maps:\n        decap_dsts:\n          - {key: \"::ffff:10.111.222.11\", value: 1}\n"
	file := writeLab(t, t.TempDir(), []byte(referenceText()), "mhd", "mhd-", "defaults:", jumboHosts+"defaults:",
		"real:   {kind: real}\n", real)
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", "mhd").Run() })
	out, err := dsrlab(t, "up", "-v", "-t", file)
	if err != nil || !strings.Contains(out, progHost+": attached xdp_decap") {
		t.Fatalf("up: %v\n%s", err, out)
	}
	if got := dockerExec(t, "hello\n", "mhd-client", "nc", vip, vipPort); !strings.Contains(got, "): hello") {
		t.Errorf("the VIP through the user's decap on the other host answered %q", got)
	}
	out, err = dsrlab(t, "map", "--name", "mhd", "real", "decap_stats", "--format", "json")
	if err != nil || !strings.Contains(out, "DECAP_STAT_DECAPSULATED") || strings.Contains(out, `"sum": 0`) {
		t.Errorf("map of the user's decap counters on the other host (want packets decapsulated): %v\n%s", err, out)
	}
	if out, err := dsrlab(t, "up", "-t", file); err != nil || !strings.Contains(out, "nothing changed") {
		t.Errorf("a second up: %v\n%s", err, out)
	}
	downLeavesNothing(t, remote, "mhd")
}

// TestTailCallsOnAnotherHost: a user's program whose counter is reached by
// a tail call through a program array the topology fills, on a client of
// another host. The agent pins the array there (in its container), so the
// calls go on after up has exited; down lets go of it with the agent.
func TestTailCallsOnAnotherHost(t *testing.T) {
	requireSetup(t)
	remote := startHost(t, progHost, progHostIndex)
	src, err := filepath.Abs("../internal/lab/testdata/tailcount.c")
	if err != nil {
		t.Fatal(err)
	}
	client := fmt.Sprintf("client: {kind: client, host: %s, program: {source: %q, name: xdp_entry, interface: eth0, maps: {jmp: [{key: 0, value: xdp_count}]}}}", progHost, src)
	file := traceLab(t, []byte(referenceText()), "mht", "mht-", "defaults:", hostsBlockWith(progHost, progHostIndex)+"defaults:",
		"client: {kind: client}", client)
	out, err := dsrlab(t, "exec", "--name", "mht", "client", "--", "sh", "-c", "echo hello | nc "+vip+" "+vipPort)
	if err != nil || !strings.Contains(out, "): hello") {
		t.Errorf("the VIP from the client on the other host: %v\n%s", err, out)
	}
	// The program array holds xdp_count, and frames counts: the tail
	// call works after up has exited.
	out, err = dsrlab(t, "map", "--name", "mht", "client", "jmp")
	if err != nil || !strings.Contains(out, "0  xdp_count (id ") {
		t.Errorf("map client jmp (want it naming xdp_count): %v\n%s", err, out)
	}
	out, err = dsrlab(t, "map", "--name", "mht", "client", "frames")
	if err != nil || !strings.Contains(out, "frames (") || strings.Contains(out, ": 0 non-zero entries") {
		t.Errorf("map client frames (want frames counted by xdp_count): %v\n%s", err, out)
	}
	if out, err := dsrlab(t, "up", "-t", file); err != nil || !strings.Contains(out, "nothing changed") {
		t.Errorf("a second up: %v\n%s", err, out)
	}
	downLeavesNothing(t, remote, "mht")
}
