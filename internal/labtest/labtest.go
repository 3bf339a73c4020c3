// Package labtest brings labs up for tests without a container engine:
// the fake runtime's containers are plain network namespaces, and the
// reals' echo service runs in this process, so the lab's veths, routes,
// XDP programs and answers are real.
package labtest

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dsrlab/dsrlab/internal/echo"
	"github.com/dsrlab/dsrlab/internal/image"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime/fake"
)

// Runtime is a fake runtime whose containers run dsrlab's echo service
// in-process when their command asks for it, with a private state dir and
// bpffs for pins. It skips the test when not root.
func Runtime(t *testing.T) *fake.Runtime {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and loads XDP programs")
	}
	t.Setenv("DSRLAB_STATE_DIR", t.TempDir())
	// Its labs' names, and their containers', may be those of real labs
	// on this machine (the e2e suite's run beside the unit tests).
	t.Setenv("DSRLAB_NETNS_DIR", t.TempDir())
	// The test's own bpffs for pins, mounted by the first that needs it:
	// its labs' names may be those of real labs on this machine.
	pins := filepath.Join(t.TempDir(), "bpf")
	t.Setenv("DSRLAB_PIN_DIR", pins)
	t.Cleanup(func() { _ = unix.Unmount(pins, unix.MNT_DETACH) })
	rt := fake.New()
	rt.Process = StartEcho
	t.Cleanup(func() {
		list, _ := rt.List(context.Background(), nil)
		for _, c := range list {
			_ = rt.Remove(context.Background(), c.ID)
		}
	})
	return rt
}

// StartEcho runs `dsrlab echo --node N --addr A --listen P/ADDR ...` as the
// real's echo service inside its namespace; other commands (the keepalive
// loop) need nothing.
func StartEcho(ctx context.Context, ns *netconf.Namespace, cmd []string) error {
	if len(cmd) < 2 || cmd[0] != image.BinaryPath || cmd[1] != "echo" {
		return nil
	}
	srv := &echo.Server{}
	var ls []echo.Listener
	for i := 2; i+1 < len(cmd); i += 2 {
		switch cmd[i] {
		case "--node":
			srv.Node = cmd[i+1]
		case "--addr", "--addr6":
			a, err := netip.ParseAddr(cmd[i+1])
			if err != nil {
				return err
			}
			if cmd[i] == "--addr6" {
				srv.Addr6 = a
			} else {
				srv.Addr = a
			}
		case "--listen":
			l, err := echo.ParseListener(cmd[i+1])
			if err != nil {
				return err
			}
			ls = append(ls, l)
		default:
			return fmt.Errorf("echo: unexpected argument %q", cmd[i])
		}
	}
	// The serving thread stays in the namespace until ctx ends; its
	// sockets belong to the namespace for their whole life. Its own handle:
	// the container's is closed when it stops, while this one still runs.
	own, err := ns.Clone()
	if err != nil {
		return err
	}
	go func() {
		defer own.Close()
		own.Do(func() error { return srv.Serve(ctx, ls) })
	}()
	return nil
}

// Quiet is a lab.Reporter that reports nothing.
type Quiet struct{}

func (Quiet) Step(string, time.Duration, string, error) {}
func (Quiet) Detail(string, string)                     {}
func (Quiet) Note(string)                               {}
func (Quiet) Progress(string, int, int)                 {}
