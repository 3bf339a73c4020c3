package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/runtime/docker"
)

// The second host of these tests: a Docker engine in its own network, PID
// and mount namespaces (scripts/host.sh), as foreign to this host's engine
// as another machine's, joined to this host by an underlay network. Tests
// of other files start hosts of their own names and indexes, so that runs
// of single tests never share one.
const (
	host2         = "e2h2"
	host2Index    = 1
	localUnderlay = "172.31.255.1"
)

// startHost2 starts the second host for a test and stops it after.
func startHost2(t *testing.T) *docker.Docker { return startHost(t, host2, host2Index) }

// startHost starts simulated host name, underlay address 172.31.255.(1+index),
// for a test and stops it after.
func startHost(t *testing.T, name string, index int) *docker.Docker {
	t.Helper()
	out, err := exec.Command("../scripts/host.sh", "start", name, strconv.Itoa(index)).CombinedOutput()
	if err != nil {
		t.Fatalf("start host %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("../scripts/host.sh", "stop", name).CombinedOutput(); err != nil {
			t.Errorf("stop host %s: %v\n%s", name, err, out)
		}
	})
	engine, err := docker.NewAt(hostEngine(name), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	return engine
}

func hostEngine(name string) string { return "unix:///run/docker-" + name + ".sock" }

// hostsBlockWith names the local host and simulated host name (started at
// index) with their underlay addresses.
func hostsBlockWith(name string, index int) string {
	return fmt.Sprintf("hosts:\n  local: {underlay: %s}\n  %s: {docker: %q, underlay: 172.31.255.%d}\n",
		localUnderlay, name, hostEngine(name), 1+index)
}

// hostsBlock names both hosts with their underlay addresses.
var hostsBlock = hostsBlockWith(host2, host2Index)

func labContainersOn(t *testing.T, engine *docker.Docker, name string) []string {
	t.Helper()
	list, err := engine.List(context.Background(), map[string]string{lab.LabelLab: name})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
	}
	return names
}

func TestSeveralHosts(t *testing.T) {
	requireSetup(t)
	remote := startHost2(t)

	t.Run("reference lab with its real on the second host", func(t *testing.T) {
		text := strings.Replace(referenceText(), "real:   {kind: real}", "real:   {kind: real, host: "+host2+"}", 1)
		text = strings.Replace(text, "name: dsr\nprefix: \"\"", "name: mh\nprefix: \"mh-\"\n"+hostsBlock, 1)
		file := filepath.Join(t.TempDir(), "lab.yaml")
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", "mh").Run() })
		if out, err := dsrlab(t, "up", "-t", file); err != nil {
			t.Fatalf("up: %v\n%s", err, out)
		}
		if names := labContainersOn(t, remote, "mh"); !strings.Contains(strings.Join(names, " "), "mh-real") {
			t.Fatalf("the second engine runs %v, want the real", names)
		}
		want := regexp.MustCompile(`^\[real 10\.111\.222\.11\] \('10\.111\.220\.11', \d+\): hello\n$`)
		if got := dockerExec(t, "hello\n", "mh-client", "nc", vip, vipPort); !want.MatchString(got) {
			t.Errorf("answer %q does not match %s", got, want)
		}
		const size = 1 << 20
		got := dockerExec(t, "", "mh-client", "sh", "-c", "head -c "+strconv.Itoa(size)+" /dev/zero | nc "+vip+" "+vipPort+" | wc -c")
		if n, err := strconv.Atoi(strings.TrimSpace(got)); err != nil || n < size {
			t.Errorf("1 MB through the VIP to the other host returned %q bytes", got)
		}
		if out, err := dsrlab(t, "verify", "--name", "mh"); err != nil {
			t.Errorf("verify (DSR by the balancer's counters): %v\n%s", err, out)
		}
		// The real's packets are read on its own host, by the agent.
		// (The real's decap runs before packet sockets see a frame: what
		// is captured there is the request as the real's kernel gets it.)
		capture, lines := startCapture(t, "capture", "--name", "mh", "-c", "1", "real", "tcp", "dst", "port", vipPort)
		dockerExec(t, "again\n", "mh-client", "nc", vip, vipPort)
		if err := waitFor(capture, 30*time.Second); err != nil {
			t.Errorf("capture on the other host: %v", err)
		}
		if !strings.Contains(lines.String(), "10.111.220.11.") || !strings.Contains(lines.String(), "> 192.168.10.1.50007") {
			t.Errorf("capture on the other host saw no request:\n%s", lines.String())
		}
		if out, err := dsrlab(t, "exec", "--name", "mh", "real", "--", "ip", "link", "show", "eth0"); err != nil || !strings.Contains(out, "eth0") {
			t.Errorf("exec on the other host: %v\n%s", err, out)
		}
		out, err := dsrlab(t, "inspect", "--name", "mh", "--format", "json")
		if err != nil || !strings.Contains(out, `"host": "`+host2+`"`) || strings.Contains(out, "is missing") {
			t.Errorf("inspect across hosts: %v\n%s", err, out)
		}
		downLeavesNothing(t, remote, "mh")
	})

	t.Run("16 reals over both hosts", func(t *testing.T) {
		gen, err := exec.Command("../scripts/genlab.sh", "16", "mh16").Output()
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Replace(string(gen), "prefix: \"mh16-\"\n", "prefix: \"mh16-\"\n"+hostsBlock, 1)
		for i := 2; i <= 16; i += 2 {
			text = strings.Replace(text, fmt.Sprintf("  real%d: {kind: real}\n", i), fmt.Sprintf("  real%d: {kind: real, host: %s}\n", i, host2), 1)
		}
		file := filepath.Join(t.TempDir(), "lab.yaml")
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", "mh16").Run() })
		if out, err := dsrlab(t, "up", "-t", file); err != nil {
			t.Fatalf("up: %v\n%s", err, out)
		}
		res := loadFromClient(t, "mh16-client", "--target", vip+":"+vipPort, "--short", "320")
		if res.Failed() {
			t.Fatalf("connections failed: %s %v", res.Summary(), res.Errors)
		}
		var odd, even int
		for real, n := range res.PerReal {
			i, _ := strconv.Atoi(strings.TrimPrefix(real, "real"))
			if i%2 == 0 {
				even += n
			} else {
				odd += n
			}
		}
		if odd == 0 || even == 0 || len(res.PerReal) < 12 {
			t.Errorf("answers by real %v: want reals of both hosts", res.PerReal)
		}
		if _, err := dsrlab(t, "down", "--name", "mh16"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("SIGKILL during up, then down", func(t *testing.T) {
		text := strings.Replace(referenceText(), "real:   {kind: real}", "real:   {kind: real, host: "+host2+"}", 1)
		text = strings.Replace(text, "name: dsr\nprefix: \"\"", "name: mhk\nprefix: \"mhk-\"\n"+hostsBlock, 1)
		file := filepath.Join(t.TempDir(), "lab.yaml")
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", "mhk").Run() })
		for _, after := range []time.Duration{800 * time.Millisecond, 2 * time.Second} {
			up := exec.Command(dsrlabBin, "up", "-q", "-t", file)
			if err := up.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(after)
			up.Process.Signal(syscall.SIGKILL)
			up.Wait()
			if out, err := dsrlab(t, "down", "--name", "mhk"); err != nil {
				t.Fatalf("down after a killed up: %v\n%s", err, out)
			}
			if left := labContainersOnBoth(t, remote, "mhk"); len(left) > 0 {
				t.Errorf("killed after %v, then down: left %v", after, left)
			}
		}
	})
}

func referenceText() string {
	data, err := os.ReadFile("../labs/dsr.yaml")
	if err != nil {
		panic(err)
	}
	return string(data)
}

func labContainersOnLocal(t *testing.T, name string) []string {
	t.Helper()
	var names []string
	for _, c := range labContainers(t, name) {
		names = append(names, c.Name)
	}
	return names
}

// labContainersOnBoth lists the lab's containers on this host's engine and
// on remote's.
func labContainersOnBoth(t *testing.T, remote *docker.Docker, name string) []string {
	t.Helper()
	return append(labContainersOn(t, remote, name), labContainersOnLocal(t, name)...)
}

// downLeavesNothing takes the lab down and checks that no container of it
// is left on either engine.
func downLeavesNothing(t *testing.T, remote *docker.Docker, name string) {
	t.Helper()
	if out, err := dsrlab(t, "down", "--name", name); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	if left := labContainersOnBoth(t, remote, name); len(left) > 0 {
		t.Errorf("left after down: %v", left)
	}
}

// waitFor waits for a command, killing it after limit.
func waitFor(cmd *exec.Cmd, limit time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		cmd.Process.Kill()
		return fmt.Errorf("still running after %v", limit)
	}
}
