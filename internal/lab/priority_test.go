package lab

import (
	"context"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// threadNice is the nice value of thread tid, 0 for the calling one (the
// raw system call returns 20 - nice).
func threadNice(t *testing.T, tid int) int {
	p, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		t.Error(err)
	}
	return 20 - p
}

// A background step runs at the lowest priority until up waits for it,
// and at the process's own from then on.
func TestBackgroundStepYieldsTheCPUUntilWaitedFor(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a thread its priority back needs CAP_SYS_NICE: run as root")
	}
	base := threadNice(t, unix.Getpid())
	if base >= lowestNice {
		t.Skipf("the test runs at nice %d already", base)
	}
	before, after := make(chan int, 1), make(chan int, 1)
	d := &deployment{rep: &recorder{}}
	b := d.startBackground(context.Background(), step{name: "bg", until: "next", fn: func(context.Context) (string, error) {
		before <- threadNice(t, 0)
		// Until join gives the priority back (or the test has failed).
		for end := time.Now().Add(10 * time.Second); threadNice(t, 0) == lowestNice && time.Now().Before(end); {
			time.Sleep(time.Millisecond)
		}
		after <- threadNice(t, 0)
		return "done", nil
	}})
	if got := <-before; got != lowestNice {
		t.Errorf("the step ran at nice %d, want %d", got, lowestNice)
	}
	if err := d.join(b); err != nil {
		t.Fatal(err)
	}
	if got := <-after; got != base {
		t.Errorf("once waited for, the step ran at nice %d, want the process's %d", got, base)
	}
}
