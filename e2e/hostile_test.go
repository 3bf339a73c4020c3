package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/labs"
	"github.com/dsrlab/dsrlab/topology"
)

// Hostile input, as a careful tester tries it: files that are endless or
// never end, engines that never answer, signals while dsrlab waits. Each
// case gives a clear error or a prompt stop, and leaves nothing.

// exitBound is how long a command may take to end where it should end at
// once (an error before any wait, or after one signal): generous, since
// the machine is shared; a hang is what it catches.
const exitBound = 10 * time.Second

// memoryLimitKB is the address space dsrlab gets in the memory-limited
// cases: plenty for its work, far less than reading an endless file.
const memoryLimitKB = 1 << 20

// TestEndlessFilesUnderMemoryLimit runs dsrlab with a 1 GiB address space
// on files that never end: each is refused as what it is, by a normal
// error, never an out-of-memory crash.
func TestEndlessFilesUnderMemoryLimit(t *testing.T) {
	requireSetup(t)
	dir := t.TempDir()
	tlsLab := filepath.Join(dir, "tls.yaml")
	text := strings.Replace(string(labs.Reference), "name: dsr\n",
		"name: hostile-tls\nhosts:\n  local: {underlay: 172.31.254.1}\n"+
			"  h2: {docker: \"tcp://127.0.0.1:2376\", underlay: 172.31.254.2, tls: {ca: /dev/zero, cert: /dev/urandom, key: /dev/zero}}\n", 1)
	text = strings.Replace(text, "real:   {kind: real}", "real:   {kind: real, host: h2}", 1)
	if err := os.WriteFile(tlsLab, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	limited := func(args ...string) (string, int) {
		cmd := exec.Command("sh", append([]string{"-c", fmt.Sprintf("ulimit -v %d; exec \"$0\" \"$@\"", memoryLimitKB), dsrlabBin}, args...)...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("dsrlab %s: %v", strings.Join(args, " "), err)
		}
		return string(out), cmd.ProcessState.ExitCode()
	}
	// The limit leaves room for dsrlab's work: a real topology validates.
	if out, code := limited("validate"); code != 0 {
		t.Fatalf("validate of the reference lab under the limit: exit %d\n%s", code, out)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"validate", "-t", "/dev/zero"}, []string{"/dev/zero: a device, not a regular file"}},
		{[]string{"validate", "-t", "/dev/urandom"}, []string{"/dev/urandom: a device, not a regular file"}},
		{[]string{"graph", "-t", "/dev/zero"}, []string{"/dev/zero: a device"}},
		{[]string{"down", "-t", "/dev/urandom"}, []string{"/dev/urandom: a device"}},
		{[]string{"up", "-t", "/dev/zero"}, []string{"/dev/zero: a device"}},
		// TLS files are checked where the topology names them.
		{[]string{"validate", "-t", tlsLab}, []string{"hosts.h2.tls.ca: /dev/zero: a device", "hosts.h2.tls.cert: /dev/urandom: a device", "hosts.h2.tls.key: /dev/zero: a device"}},
	} {
		out, code := limited(c.args...)
		if code != 1 || strings.Contains(out, "out of memory") || strings.Contains(out, "goroutine ") {
			t.Errorf("dsrlab %s: exit %d, want 1 with an error\n%.2000s", strings.Join(c.args, " "), code, out)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("dsrlab %s: %q lacks %q", strings.Join(c.args, " "), out, w)
			}
		}
	}
}

// silentEngine is a TCP listener on 127.0.0.1 that accepts connections
// and never answers on them; accepted counts them.
func silentEngine(t *testing.T) (addr string, accepted *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int32)
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
			accepted.Add(1)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})
	return ln.Addr().String(), accepted
}

// silentHostLab writes the reference lab renamed, with its real on a host
// whose engine is addr.
func silentHostLab(t *testing.T, name, addr string) (string, *topology.Topology) {
	t.Helper()
	text := strings.Replace(string(labs.Reference), "name: dsr\n",
		fmt.Sprintf("name: %s\nhosts:\n  local: {underlay: 172.31.254.1}\n  h2: {docker: \"tcp://%s\", underlay: 172.31.254.2}\n", name, addr), 1)
	text = strings.Replace(text, `prefix: ""`, `prefix: "`+name+`-"`, 1)
	text = strings.Replace(text, "real:   {kind: real}", "real:   {kind: real, host: h2}", 1)
	path := filepath.Join(t.TempDir(), "lab.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, topo
}

// An engine that accepts the connection and never answers fails up
// within its deadline (a short one here), naming the host and the wait,
// with nothing created and nothing recorded.
func TestSilentEngineFailsUpWithinItsDeadline(t *testing.T) {
	requireSetup(t)
	addr, accepted := silentEngine(t)
	file, topo := silentHostLab(t, "hostile-silent", addr)
	cmd := exec.Command(dsrlabBin, "up", "-t", file)
	cmd.Env = append(os.Environ(), "DSRLAB_ENGINE_TIMEOUT=1s")
	out, err := cmd.CombinedOutput()
	t.Logf("up:\n%s", out)
	if err == nil || accepted.Load() == 0 {
		t.Fatalf("up against a silent engine: %v, %d connections", err, accepted.Load())
	}
	want := "host h2: the Docker engine at tcp://" + addr + " accepted the connection but did not answer within 1s"
	if !strings.Contains(string(out), want) || strings.Contains(string(out), "Is the docker daemon running") {
		t.Errorf("up says %q, want %q", out, want)
	}
	assertNothingLeft(t, topo)
}

// One SIGTERM stops dsrlab while it waits, whatever it waits on (here a
// preflight ping of an engine that never answers, with a deadline of an
// hour): it exits promptly, says why, and leaves nothing.
func TestSignalStopsAWait(t *testing.T) {
	requireSetup(t)
	addr, accepted := silentEngine(t)
	file, topo := silentHostLab(t, "hostile-sigterm", addr)
	recorded := filepath.Join(t.TempDir(), "state")
	for _, c := range []struct {
		name string
		args []string
		env  []string
	}{
		{"up's preflight", []string{"up", "-t", file}, nil},
		// A lab that is recorded (so down asks its engines) whose local
		// engine never answers.
		{"down's ping", []string{"down", "--name", "hostile-recorded"}, []string{"DOCKER_HOST=tcp://" + addr, "DSRLAB_STATE_DIR=" + recorded}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.MkdirAll(filepath.Join(recorded, "hostile-recorded"), 0o755); err != nil {
				t.Fatal(err)
			}
			before := accepted.Load()
			cmd := exec.Command(dsrlabBin, c.args...)
			cmd.Env = append(append(os.Environ(), "DSRLAB_ENGINE_TIMEOUT=1h"), c.env...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			// Signalled once it waits: the engine has its connection.
			for accepted.Load() == before {
				select {
				case err := <-exited:
					t.Fatalf("exited before waiting: %v\n%s", err, out.String())
				case <-time.After(10 * time.Millisecond):
				}
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case <-exited:
			case <-time.After(exitBound):
				cmd.Process.Kill()
				<-exited
				t.Fatalf("still running %v after one SIGTERM\n%s", exitBound, out.String())
			}
			if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(out.String(), "terminated") {
				t.Errorf("exit %d (want 1), output %q: want it to say it was terminated", code, out.String())
			}
		})
	}
	assertNothingLeft(t, topo)
}

// A FIFO given as a file dsrlab reads is refused at once, never opened
// for reading (which would block until a writer comes).
func TestFIFOIsRefusedAtOnce(t *testing.T) {
	requireSetup(t)
	fifo := filepath.Join(t.TempDir(), "lab.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"validate", "-t", fifo}, {"up", "-t", fifo}, {"down", "-t", fifo}, {"verify", "-t", fifo}} {
		cmd := exec.Command(dsrlabBin, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-exited:
		case <-time.After(exitBound):
			cmd.Process.Kill()
			<-exited
			t.Errorf("dsrlab %s still waiting on the FIFO after %v", strings.Join(args, " "), exitBound)
			continue
		}
		if !strings.Contains(out.String(), fifo+": a FIFO, not a regular file") || cmd.ProcessState.ExitCode() != 1 {
			t.Errorf("dsrlab %s: exit %d, %q", strings.Join(args, " "), cmd.ProcessState.ExitCode(), out.String())
		}
	}
}

// down of a lab that was never up returns at once and exits 0, asking no
// engine, even one that never answers: nothing of the lab is on any.
func TestDownOfNeverUpLabAsksNoEngine(t *testing.T) {
	requireSetup(t)
	addr, accepted := silentEngine(t)
	file, topo := silentHostLab(t, "hostile-never-up", addr)
	cmd := exec.Command(dsrlabBin, "down", "-t", file)
	cmd.Env = append(os.Environ(), "DSRLAB_ENGINE_TIMEOUT=1h")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "nothing to remove") {
		t.Errorf("down of a lab never up: %v\n%s", err, out)
	}
	if n := accepted.Load(); n > 0 {
		t.Errorf("down connected %d times to the engine of a host that holds nothing of the lab", n)
	}
	assertNothingLeft(t, topo)
}
