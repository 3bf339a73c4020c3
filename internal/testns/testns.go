// Package testns gives privileged tests throwaway network namespaces, so
// nothing a test creates can touch the host's interfaces or leak past it.
package testns

import (
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// New returns a fresh, empty network namespace that dies when the test
// ends (with its last file descriptor). The calling thread stays where it
// was. It skips the test, saying why, when not run as root.
func New(t testing.TB) netns.NsHandle {
	t.Helper()
	requireRoot(t)
	runtime.LockOSThread()
	orig := current(t)
	defer orig.Close()
	ns, err := netns.New() // unshare: this thread is now inside it
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("new network namespace: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		// The thread stays locked: Go discards it with the goroutine
		// rather than reuse it in the wrong namespace.
		t.Fatalf("restore network namespace: %v", err)
	}
	runtime.UnlockOSThread()
	t.Cleanup(func() { ns.Close() })
	return ns
}

// Enter moves the test's goroutine, locked to its thread, into a fresh
// namespace until the test ends, for code that acts on "the current
// namespace" (netlink's package-level calls, BPF_PROG_TEST_RUN ifindexes).
// Cleanup functions run on the test's goroutine, so the restore does too.
func Enter(t testing.TB) netns.NsHandle {
	t.Helper()
	requireRoot(t)
	runtime.LockOSThread()
	orig := current(t)
	ns, err := netns.New()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("new network namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: Go discards it when the goroutine
			// ends instead of reusing a thread in the wrong namespace.
			t.Errorf("restore network namespace: %v", err)
			return
		}
		orig.Close()
		ns.Close()
		runtime.UnlockOSThread()
	})
	return ns
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
}

func current(t testing.TB) netns.NsHandle {
	t.Helper()
	orig, err := netns.Get()
	if err != nil {
		t.Fatalf("current network namespace: %v", err)
	}
	return orig
}
