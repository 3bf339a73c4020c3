// Package e2e brings real labs up with Docker and checks them the way a user
// would: through `docker exec client nc`, interface counters and the kernel's
// own view of attached XDP programs.
//
// It needs root, a Docker engine (started here if installed but not
// running), Debian's busybox-static and the Go toolchain (to build dsrlab).
// Without them every test skips with the reason; with DSRLAB_REQUIRE_E2E=1
// (set by .ci/run) a skip is a failure instead, so CI cannot pass by
// skipping.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/runtime/docker"
)

var (
	dsrlabBin string // built once by TestMain
	setupErr  error  // why the suite cannot run here
	engine    *docker.Docker
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dsrlab-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Recorded lab state goes to a private directory, not the host's.
	os.Setenv("DSRLAB_STATE_DIR", filepath.Join(dir, "state"))
	setupErr = setup(dir)
	code := m.Run()
	if engine != nil {
		engine.Close()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func setup(dir string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (containers' network namespaces, XDP)")
	}
	dsrlabBin = filepath.Join(dir, "dsrlab")
	build := exec.Command("go", "build", "-o", dsrlabBin, "../cmd/dsrlab")
	// The binary is copied into the scratch node image: it must be static.
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build dsrlab: %v\n%s", err, out)
	}
	var err error
	if engine, err = docker.New(); err != nil {
		return err
	}
	return ensureEngine(engine)
}

// ensureEngine starts dockerd when it is installed but not running, as on
// a fresh machine, and waits for it to answer.
func ensureEngine(d *docker.Docker) error {
	ctx := context.Background()
	if d.Ping(ctx) == nil {
		return nil
	}
	path, err := exec.LookPath("dockerd")
	if err != nil {
		return fmt.Errorf("no Docker engine running and dockerd not installed (apt-get install docker.io)")
	}
	logf, err := os.Create(filepath.Join(os.TempDir(), "dsrlab-e2e-dockerd.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(path)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dockerd: %w", err)
	}
	// The engine outlives the test binary on purpose: later runs reuse it.
	cmd.Process.Release()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if d.Ping(ctx) == nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("dockerd did not answer within 60s; see %s", logf.Name())
}

func requireSetup(t *testing.T) {
	t.Helper()
	if setupErr == nil {
		return
	}
	if os.Getenv("DSRLAB_REQUIRE_E2E") == "1" {
		t.Fatalf("end-to-end suite required but cannot run: %v", setupErr)
	}
	t.Skipf("end-to-end suite skipped: %v", setupErr)
}
