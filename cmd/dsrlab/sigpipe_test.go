package main

import (
	"bytes"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// runAsMain makes the test binary behave as dsrlab when a test starts it
// again with this variable set, so a test can watch main's process from
// outside: how it exits, by code or by signal.
const runAsMain = "DSRLAB_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runAsMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestClosedOutputDoesNotKill runs a command that prints a lot with its
// output a pipe nobody reads (`dsrlab ... | head` once head has exited): the
// process must end by its own exit code, not by SIGPIPE.
func TestClosedOutputDoesNotKill(t *testing.T) {
	for _, tc := range []struct {
		name         string
		stderrClosed bool
	}{
		{"stdout closed", false},
		{"stdout and stderr closed (2>&1 | head)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			r.Close()
			defer w.Close()
			cmd := exec.Command(os.Args[0], "validate", "-t", "../../labs/dsr.yaml", "--resolved")
			cmd.Env = append(os.Environ(), runAsMain+"=1")
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = w, &stderr
			if tc.stderrClosed {
				cmd.Stderr = w
			}
			err = cmd.Run()
			if cmd.ProcessState == nil {
				t.Fatalf("did not run: %v", err)
			}
			status := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if status.Signaled() {
				t.Fatalf("killed by %v on writing to a closed output", status.Signal())
			}
			t.Logf("exit code %d; stderr: %s", status.ExitStatus(), stderr.String())
		})
	}
}
