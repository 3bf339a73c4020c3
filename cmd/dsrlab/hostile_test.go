//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/dsrlab/dsrlab/labs"
)

// Hostile input through the CLI, in-process and without an engine (the
// cases that need one are in e2e/hostile_test.go).

// Only regular files are read as topologies: a device or a FIFO given by
// mistake is refused by name, never read without end or waited on.
func TestTopologyMustBeARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{"/dev/zero", "/dev/zero: a device, not a regular file"},
		{"/dev/urandom", "/dev/urandom: a device, not a regular file"},
		{fifo, fifo + ": a FIFO, not a regular file"},
		{dir, dir + ": a directory, not a file"},
	} {
		for _, cmd := range []string{"validate", "graph", "down"} {
			if _, err := run(t, cmd, "-t", c.path); err == nil || err.Error() != c.want {
				t.Errorf("%s -t %s: %v, want %q", cmd, c.path, err, c.want)
			}
		}
	}
}

// silentListener accepts TCP connections on 127.0.0.1 and never answers;
// it counts them.
func silentListener(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			t.Cleanup(func() { c.Close() })
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), n
}

// down of a lab that was never up needs no engine: it returns at once,
// successfully, without connecting to any (here engines that would never
// answer), and leaves no lock file.
func TestDownOfNeverUpLabAsksNoEngine(t *testing.T) {
	state := t.TempDir()
	t.Setenv("DSRLAB_STATE_DIR", state)
	t.Setenv("DSRLAB_ENGINE_TIMEOUT", "1h")
	local, localConns := silentListener(t)
	remote, remoteConns := silentListener(t)
	t.Setenv("DOCKER_HOST", "tcp://"+local)
	file := filepath.Join(t.TempDir(), "lab.yaml")
	text := strings.Replace(string(labs.Reference), "name: dsr\n", fmt.Sprintf("name: never-up\nhosts:\n  local: {underlay: 172.31.254.1}\n"+
		"  h2: {docker: \"tcp://%s\", underlay: 172.31.254.2}\n", remote), 1)
	text = strings.Replace(text, "real:   {kind: real}", "real:   {kind: real, host: h2}", 1)
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"down", "-t", file}, {"down", "--name", "never-up"}} {
		out, err := run(t, args...)
		if err != nil || !strings.Contains(out, `Lab "never-up" is not up: nothing to remove`) {
			t.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if n := localConns.Load() + remoteConns.Load(); n > 0 {
		t.Errorf("down connected %d times to engines that hold nothing of the lab", n)
	}
	if left, _ := os.ReadDir(state); len(left) > 0 {
		t.Errorf("down of a lab never up left %v in the state directory", left[0].Name())
	}
}

// recordLab makes a lab recorded (as up does before it creates anything),
// so that down asks its engines.
func recordLab(t *testing.T, name string) {
	t.Helper()
	state := t.TempDir()
	t.Setenv("DSRLAB_STATE_DIR", state)
	if err := os.Mkdir(filepath.Join(state, name), 0o755); err != nil {
		t.Fatal(err)
	}
}

// An engine that accepts the connection and never answers fails a command
// within the deadline, saying so, not "Is the docker daemon running?".
func TestSilentEngineFailsWithinItsDeadline(t *testing.T) {
	recordLab(t, "any")
	addr, conns := silentListener(t)
	t.Setenv("DOCKER_HOST", "tcp://"+addr)
	t.Setenv("DSRLAB_ENGINE_TIMEOUT", "300ms")
	_, err := run(t, "down", "--name", "any")
	want := "the Docker engine at tcp://" + addr + " accepted the connection but did not answer within 300ms (DSRLAB_ENGINE_TIMEOUT sets how long to wait)"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "Is the docker daemon running") || conns.Load() == 0 {
		t.Errorf("down with a silent engine: %v\nwant %q", err, want)
	}
	t.Setenv("DSRLAB_ENGINE_TIMEOUT", "soon")
	if _, err := run(t, "down", "--name", "any"); err == nil || !strings.Contains(err.Error(), `DSRLAB_ENGINE_TIMEOUT="soon": want a positive duration`) {
		t.Errorf("a bad timeout: %v", err)
	}
}

// capture refuses what it cannot do, before it waits for anything: an
// empty interface, a lab that is not up, a filter too long to echo.
func TestCaptureRefusals(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("capture needs root, and refuses without it before anything else")
	}
	t.Setenv("DSRLAB_STATE_DIR", t.TempDir())
	long := strings.Repeat("host 10.0.0.1 or ", 3500) + "tcp"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"capture", "router:"}, `"router:" names no interface after the colon: write router:IFACE, or router for all of its interfaces`},
		{[]string{"capture", ":eth0"}, `":eth0": want NODE or NODE:IFACE`},
		{[]string{"capture", "--name", "nolab", "router"}, `lab "nolab" is not up`},
		{[]string{"capture", "--name", "nolab", "router", long}, "instructions, more than the kernel's limit"},
	} {
		_, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || len(err.Error()) > 500 {
			t.Errorf("%.60s: %.600v\nwant %q in under 500 bytes", strings.Join(c.args, " "), err, c.want)
		}
	}
}
