package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/bpf"
)

// bpfFDs counts the BPF programs and maps this process holds open. GC is
// off around what is counted (see noGC): a handle dropped without Close
// would otherwise be closed by its finalizer at some point, and hide.
func bpfFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if strings.HasPrefix(target, "anon_inode:bpf-prog") || strings.HasPrefix(target, "anon_inode:bpf-map") {
			n++
		}
	}
	return n
}

func noGC(t *testing.T) {
	t.Helper()
	old := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

// loadedSignal is closed once the builtins step has reported loading the
// program named what; a recorder's onDetail feeds it.
func loadedSignal(rep *recorder, what string) <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	rep.onDetail = func(step, msg string) {
		if step == "builtins" && strings.HasPrefix(msg, "loaded "+what) {
			once.Do(func() { close(ch) })
		}
	}
	return ch
}

// awaitLoad makes a container's creation wait until the builtins step has
// loaded what: if the step ran only after the containers (or not at all),
// the wait would never end, and the deadline fails up instead.
func awaitLoad(loaded <-chan struct{}) error {
	select {
	case <-loaded:
		return nil
	case <-time.After(time.Minute):
		return errors.New("the built-in programs were not loaded while the containers started")
	}
}

// The balancer and the decap program are loaded while the containers
// start, and the steps that attach them use those: up waits for the
// builtins step just before decap, and leaves no handle of its own open.
func TestBuiltinsLoadWhileContainersStart(t *testing.T) {
	rt := fakeLab(t)
	noGC(t)
	topo := load(t, "dsr.yaml")
	rep := &recorder{}
	loaded := loadedSignal(rep, bpf.BalancerName)
	rt.FailRun = func(name string) error {
		if name == "katran" {
			return awaitLoad(loaded)
		}
		return nil
	}
	before := bpfFDs(t)
	if _, err := Up(context.Background(), one(rt), topo, rep); err != nil {
		t.Fatalf("up: %v (steps %v)", err, rep.steps)
	}
	if i := slices.Index(rep.steps, "builtins"); i < 0 || rep.steps[i-1] != "addressing" || rep.steps[i+1] != "decap" {
		t.Errorf("steps %v: want builtins reported between addressing and decap, where up waits for it", rep.steps)
	}
	if after := bpfFDs(t); after != before {
		t.Errorf("up holds %d BPF objects open after it returned, %d before", after, before)
	}
	mustVerify(t, rt, topo)
}

// A lab that is up has its programs attached: a second up loads nothing
// in the background.
func TestBuiltinsLoadNothingForARunningLab(t *testing.T) {
	rt := fakeLab(t)
	topo := load(t, "dsr.yaml")
	mustUp(t, rt, topo)
	rep := &recorder{}
	var loads []string
	rep.onDetail = func(step, msg string) {
		if step == "builtins" {
			loads = append(loads, msg)
		}
	}
	if _, err := Up(context.Background(), one(rt), topo, rep); err != nil {
		t.Fatal(err)
	}
	if len(loads) > 0 {
		t.Errorf("the builtins step loaded programs for a running lab: %v", loads)
	}
}

// Whatever fails while the built-in programs load — the load itself, or a
// container beside it — up rolls back everything and closes every program
// it loaded.
func TestFaultWhileBuiltinsLoadRollsBack(t *testing.T) {
	for _, tc := range []struct {
		name, fault string
		// failRun, if set, fails the container named so once the
		// builtins step loaded its first program, while it loads the
		// others.
		failRun string
		want    string
	}{
		{name: "builtins", fault: "builtins", want: "builtins: fault injected"},
		{name: "builtins after one", fault: "builtins:1", want: "builtins: fault injected"},
		{name: "container beside", failRun: "katran", want: "containers: node katran: create container katran: no space left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := fakeLab(t)
			noGC(t)
			t.Setenv(FaultEnv, tc.fault)
			topo := load(t, "dsr.yaml")
			rep := &recorder{}
			first := loadedSignal(rep, "")
			if tc.failRun != "" {
				rt.FailRun = func(name string) error {
					if name != tc.failRun {
						return nil
					}
					if err := awaitLoad(first); err != nil {
						return err
					}
					return fmt.Errorf("no space left on device")
				}
			}
			before := bpfFDs(t)
			_, err := Up(context.Background(), one(rt), topo, rep)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("up: %v, want %q", err, tc.want)
			}
			if left := labNames(t, rt, topo.Name); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			if recorded, _ := Recorded(topo.Name); recorded {
				t.Error("a failed up of a new lab left its state directory")
			}
			if after := bpfFDs(t); after != before {
				t.Errorf("up holds %d BPF objects open after it failed, %d before", after, before)
			}
		})
	}
}
