package lab

import (
	"sync"

	"golang.org/x/sys/unix"
)

// lowestNice is the CPU priority of a background step while nothing waits
// for it. Its work is mostly the kernel verifying programs, on the
// calling thread; at the lowest priority that work takes only the CPU
// time the container engine leaves, and the engine's container starts,
// which the steps beside it wait on, go first: on a 2-CPU machine the
// reference lab's containers step took some 5% less.
const lowestNice = 19

// threadPriority lowers the priority of one locked OS thread while it
// runs a background step, and gives it back, for good, once up waits for
// the step (from then on the step is what holds up back, and at the
// lowest priority a busy machine's other work could starve it) or the step
// ends. Both ends may give it back; whoever is first does.
type threadPriority struct {
	mu     sync.Mutex
	tid    int  // the lowered thread, while it is; 0 otherwise
	nice   int  // its nice value before
	normal bool // given back: not to be lowered again
	stuck  bool // the kernel refused to give it back
}

// lower lowers the calling thread, which the caller has locked.
func (p *threadPriority) lower() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.normal {
		return
	}
	tid := unix.Gettid()
	// The raw system call returns 20 - nice.
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil || 20-prio >= lowestNice || !mayRaise(20-prio) {
		return
	}
	if unix.Setpriority(unix.PRIO_PROCESS, tid, lowestNice) == nil {
		p.tid, p.nice = tid, 20-prio
	}
}

// mayRaise tells whether a thread lowered to lowestNice could be given
// nice back: with CAP_SYS_NICE (root inside a container may lack it), or
// under an RLIMIT_NICE that allows it. Without either it is not lowered:
// it would stay low while up waits for it.
func mayRaise(nice int) bool {
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NICE, &lim) == nil && lim.Cur >= uint64(20-nice) {
		return true
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if unix.Capget(&hdr, &caps[0]) != nil {
		return false
	}
	return caps[unix.CAP_SYS_NICE/32].Effective&(1<<(unix.CAP_SYS_NICE%32)) != 0
}

// restore gives the thread its priority back, if it was lowered, and
// reports whether the thread is at its priority: a thread that is not
// must not go back to Go's pool (raising a priority needs CAP_SYS_NICE).
// It is called while the thread is locked to the step's goroutine, so the
// thread ID still names that thread.
func (p *threadPriority) restore() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.normal = true
	if p.tid != 0 {
		p.stuck = unix.Setpriority(unix.PRIO_PROCESS, p.tid, p.nice) != nil
		p.tid = 0
	}
	return !p.stuck
}
