package e2e

import (
	"bufio"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/topology"
)

// renamed writes the reference lab under another name and container
// prefix, so it can run beside (or after) the default one.
func renamed(t *testing.T, name, prefix string) (string, *topology.Topology) {
	t.Helper()
	file := referenceWith(t, "name: dsr\nprefix: \"\"", "name: "+name+"\nprefix: \""+prefix+"\"")
	topo, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	return file, topo
}

// assertNothingLeft checks that no container, host interface or recorded
// state of the lab remains.
func assertNothingLeft(t *testing.T, topo *topology.Topology) {
	t.Helper()
	if left := labContainers(t, topo.Name); len(left) > 0 {
		t.Errorf("lab %s: %d containers left, e.g. %s", topo.Name, len(left), left[0].Name)
	}
	if _, err := lab.LoadState(topo.Name); err == nil {
		t.Errorf("lab %s: state left behind", topo.Name)
	}
	// Nor any record (the hosts up writes first) or lock file.
	if recorded, err := lab.Recorded(topo.Name); recorded || err != nil {
		t.Errorf("lab %s: its state directory is left behind (%v)", topo.Name, err)
	}
	if _, err := os.Lstat(filepath.Join(os.Getenv("DSRLAB_STATE_DIR"), "."+topo.Name+".lock")); err == nil {
		t.Errorf("lab %s: its lock file is left behind", topo.Name)
	}
	macs := map[string]bool{}
	for _, l := range topo.Links {
		macs[l.A.MAC.String()], macs[l.B.MAC.String()] = true, true
	}
	host, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range host {
		if macs[l.Attrs().HardwareAddr.String()] {
			t.Errorf("lab %s: host namespace has %s with a lab MAC", topo.Name, l.Attrs().Name)
		}
	}
	for _, n := range topo.Nodes {
		if _, err := os.Lstat(filepath.Join("/run/netns", n.ContainerName)); err == nil {
			t.Errorf("lab %s: /run/netns/%s left behind", topo.Name, n.ContainerName)
		}
	}
}

func TestFaultAtEveryStepLeavesNothing(t *testing.T) {
	requireSetup(t)
	file, topo := renamed(t, "fault", "f-")
	faults := []struct{ spec, step string }{
		{"programs", "programs"},
		// The built-in programs load beside images .. addressing: a
		// failure there is met before decap, and rolls back all the same.
		{"builtins", "builtins"},
		{"builtins:1", "builtins"},
		{"images", "images"},
		{"containers:0", "containers"},
		{"containers:1", "containers"},
		{"containers:3", "containers"},
		{"links:0", "links"},
		{"links:2", "links"},
		{"addressing", "addressing"},
		{"xdp", "xdp"},
		{"decap", "decap"},
		{"services", "services"},
		{"nat", "nat"},
		{"exec", "exec"},
	}
	for _, f := range faults {
		t.Run(f.spec, func(t *testing.T) {
			cmd := exec.Command(dsrlabBin, "up", "-t", file)
			cmd.Env = append(os.Environ(), lab.FaultEnv+"="+f.spec)
			out, err := cmd.CombinedOutput()
			t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", topo.Name).Run() })
			if err == nil {
				t.Fatalf("up succeeded with %s=%s:\n%s", lab.FaultEnv, f.spec, out)
			}
			if !strings.Contains(string(out), "Error: "+f.step+": ") || !strings.Contains(string(out), "fault injected") {
				t.Errorf("error does not name the step %q:\n%s", f.step, out)
			}
			assertNothingLeft(t, topo)
		})
	}
}

func TestKilledUpIsCleanedByDown(t *testing.T) {
	requireSetup(t)
	file, topo := renamed(t, "crash", "c-")
	rng := rand.New(rand.NewPCG(1, 2)) // fixed seed: a failure can be replayed
	for i := range 20 {
		cmd := exec.Command(dsrlabBin, "up", "-t", file)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(2500)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		// At once: a create the engine was serving when up died still
		// completes, and down must outlast it.
		// Alternate the two ways of naming the lab.
		args := []string{"down", "-t", file}
		if i%2 == 1 {
			args = []string{"down", "--name", topo.Name}
		}
		if out, err := exec.Command(dsrlabBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("run %d: down after SIGKILL: %v\n%s", i, err, out)
		}
		assertNothingLeft(t, topo)
		if t.Failed() {
			t.Fatalf("run %d (killed after up to 2.5s) left state behind", i)
		}
	}
}

func TestKilledUpIsCompletedByUp(t *testing.T) {
	requireSetup(t)
	file, topo := renamed(t, "resume", "r-")
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", topo.Name).Run() })
	upSignalled(t, file, syscall.SIGKILL)
	if _, err := dsrlab(t, "up", "-t", file); err != nil {
		t.Fatalf("up after a killed up: %v", err)
	}
	if out, err := dsrlab(t, "verify", "--name", topo.Name); err != nil {
		t.Fatalf("verify after resumed up: %v\n%s", err, out)
	}
}

func TestSignalDuringUpRollsBack(t *testing.T) {
	requireSetup(t)
	file, topo := renamed(t, "sigterm", "s-")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", topo.Name).Run() })
			out, err := upSignalled(t, file, sig)
			t.Logf("up interrupted by %v:\n%s", sig, out)
			if err == nil {
				t.Skip("up finished before the signal arrived; nothing to roll back")
			}
			assertNothingLeft(t, topo)
		})
	}
}

// upSignalled runs up and sends it sig as the containers step starts,
// the built-in programs loading beside it; the agents step's line comes
// just before. Signalled then, up is mid-way however fast it is (a fixed
// delay came after the end once up took under 0.6 s). It returns what up
// printed and how it ended.
func upSignalled(t *testing.T, file string, sig syscall.Signal) (string, error) {
	t.Helper()
	cmd := exec.Command(dsrlabBin, "up", "-t", file)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		out.WriteString(lines.Text() + "\n")
		if strings.HasPrefix(lines.Text(), "  agents ") {
			cmd.Process.Signal(sig)
		}
	}
	err = cmd.Wait()
	return out.String() + errOut.String(), err
}

func TestTwoLabsSideBySide(t *testing.T) {
	requireSetup(t)
	fileA, topoA := renamed(t, "left", "l-")
	fileB, topoB := renamed(t, "right", "r-")
	t.Cleanup(func() {
		exec.Command(dsrlabBin, "down", "--name", topoA.Name).Run()
		exec.Command(dsrlabBin, "down", "--name", topoB.Name).Run()
	})
	for _, f := range []string{fileA, fileB} {
		if _, err := dsrlab(t, "up", "-t", f); err != nil {
			t.Fatalf("up %s: %v", f, err)
		}
	}
	for _, name := range []string{topoA.Name, topoB.Name} {
		if out, err := dsrlab(t, "verify", "--name", name); err != nil {
			t.Fatalf("verify %s beside the other lab (same subnets): %v\n%s", name, err, out)
		}
	}
	if _, err := dsrlab(t, "down", "--name", topoB.Name); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, topoB)
	if out, err := dsrlab(t, "verify", "--name", topoA.Name); err != nil {
		t.Fatalf("down of %s broke %s: %v\n%s", topoB.Name, topoA.Name, err, out)
	}
}

// TestLifecycle walks a user through the reference lab: up twice, inspect,
// verify, exec, a container restart that loses its links, and the up that
// re-wires it.
func TestLifecycle(t *testing.T) {
	requireSetup(t)
	t.Cleanup(func() { exec.Command(dsrlabBin, "down").Run() })
	if _, err := dsrlab(t, "up"); err != nil {
		t.Fatal(err)
	}
	out, err := dsrlab(t, "up")
	if err != nil || !strings.Contains(out, "was already up: nothing changed") {
		t.Fatalf("second up: %v; want it to change nothing and say so", err)
	}

	var reports []lab.LabReport
	out, err = dsrlab(t, "inspect", "--name", "dsr", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(jsonPart(out)), &reports); err != nil || len(reports) != 1 {
		t.Fatalf("inspect json: %v", err)
	}
	r := reports[0]
	if len(r.Nodes) != 4 || len(r.Problems) != 0 {
		t.Errorf("inspect: %d nodes, problems %q; want 4 nodes and none", len(r.Nodes), r.Problems)
	}
	for _, n := range r.Nodes {
		switch n.Node {
		case "katran":
			if n.Balancer == nil || len(n.Balancer.VIPs) != 1 || n.Balancer.VIPs[0].VIP != "192.168.10.1:50007/tcp" ||
				len(n.Balancer.VIPs[0].Reals) != 1 || n.Balancer.VIPs[0].Reals[0].Addr.String() != "10.111.222.11" {
				t.Errorf("inspect katran balancer = %+v", n.Balancer)
			}
		case "real":
			if n.Decap == "" || len(n.Loopback) != 1 || n.Loopback[0] != vip {
				t.Errorf("inspect real: decap %q, lo %v", n.Decap, n.Loopback)
			}
		case "client":
			if len(n.Gateways) != 1 || n.Gateways[0] != "10.111.220.12" {
				t.Errorf("inspect client gateways %q", n.Gateways)
			}
		}
	}

	var checks []lab.Check
	out, err = dsrlab(t, "verify", "--format", "json")
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := json.Unmarshal([]byte(jsonPart(out)), &checks); err != nil || len(checks) != 1 {
		t.Fatalf("verify json: %v (%d checks)", err, len(checks))
	}
	if c := checks[0]; !c.Pass || c.Path != "direct return" || !strings.HasPrefix(c.ClientSeen, clientIP+":") || c.ReplyFrom != vip+":"+vipPort {
		t.Errorf("verify = %+v", c)
	}

	cmd := exec.Command(dsrlabBin, "exec", "client", "--", "nc", vip, vipPort)
	cmd.Stdin = strings.NewReader("via exec\n")
	got, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(string(got), "): via exec\n") {
		t.Errorf("dsrlab exec: %v: %q", err, got)
	}
	if err := exec.Command(dsrlabBin, "exec", "client", "--", "sh", "-c", "exit 7").Run(); err == nil || err.(*exec.ExitError).ExitCode() != 7 {
		t.Errorf("dsrlab exec did not pass the exit code on: %v", err)
	}
	// With --tty the command gets a terminal; script(1) gives dsrlab one.
	if script, err := exec.LookPath("script"); err == nil {
		out, err := exec.Command(script, "-qec", dsrlabBin+" exec --tty client -- tty", "/dev/null").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "/dev/pts/") {
			t.Errorf("dsrlab exec --tty: %v: %q", err, out)
		}
	}

	// A restart gives katran a fresh namespace: its link (and the router's
	// end of it) is gone, and the balancer with it.
	if out, err := exec.Command("docker", "restart", "-t", "1", "katran").CombinedOutput(); err != nil {
		t.Fatalf("docker restart: %v\n%s", err, out)
	}
	out, _ = dsrlab(t, "inspect", "--name", "dsr")
	if !strings.Contains(out, "node katran: interface eth0 is missing") {
		t.Errorf("inspect does not report katran's lost link")
	}
	if _, err := dsrlab(t, "verify"); err == nil {
		t.Errorf("verify passed on a lab whose balancer lost its link")
	}
	if out, err := dsrlab(t, "up", "-v"); err != nil || strings.Contains(out, "nothing changed") {
		t.Fatalf("up after restart: %v; want it to re-wire katran", err)
	}
	if out, err := dsrlab(t, "verify"); err != nil {
		t.Fatalf("verify after re-wiring: %v\n%s", err, out)
	}

	if _, err := dsrlab(t, "up", "--reconfigure"); err != nil {
		t.Fatalf("up --reconfigure: %v", err)
	}
	for range 2 {
		if _, err := dsrlab(t, "down"); err != nil {
			t.Fatalf("down: %v", err)
		}
	}
}

// jsonPart drops the log lines dsrlab may print around JSON output.
func jsonPart(out string) string {
	if i := strings.IndexAny(out, "[{"); i >= 0 {
		return out[i:]
	}
	return out
}

func TestSoakScript(t *testing.T) {
	requireSetup(t)
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "-t", threeReals).Run() })
	cmd := exec.Command("../scripts/soak.sh", "labs/dsr-3reals.yaml")
	cmd.Env = append(os.Environ(), "DSRLAB="+dsrlabBin)
	out, err := cmd.CombinedOutput()
	t.Logf("scripts/soak.sh:\n%s", out)
	if err != nil || !strings.Contains(string(out), "soak: PASS") {
		t.Fatalf("soak failed: %v", err)
	}
}
