//go:build linux

package pkttest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/dsrlab/dsrlab/bpf/btfvalue"
	"github.com/dsrlab/dsrlab/bpf/prog"
	"github.com/dsrlab/dsrlab/internal/lab"
)

// Runner runs packets through a node's program with BPF_PROG_TEST_RUN.
type Runner struct {
	Program *lab.NodeProgram
	// Resolver resolves NODE:IFACE in map expectations.
	Resolver btfvalue.Resolver
}

// HookOf is the hook of a program of type t: a TC program's verdicts are
// TC_ACT_*, any other's (XDP) xdp_action.
func HookOf(t ebpf.ProgramType) Hook {
	if t == ebpf.SchedCLS {
		return HookTC
	}
	return HookXDP
}

// TargetOf is what reading a case file needs to know of p.
func TargetOf(p *lab.NodeProgram) Target {
	return Target{Hook: HookOf(p.Type), Name: p.Name}
}

// headroom is how much a program may grow a packet: the kernel refuses a
// test run whose output does not fit (two IPv6 headers of encapsulation
// are 80 bytes).
const headroom = 4096

// Run runs every case of s, each on a fresh copy of the program: a case
// sees only the state its own packets leave, as a sequence's steps do.
func (r *Runner) Run(s *Suite) []*Result {
	var results []*Result
	for _, c := range s.Cases {
		results = append(results, r.runCase(s, c))
	}
	return results
}

func (r *Runner) runCase(s *Suite, c *Case) *Result {
	res := &Result{Suite: s, Case: c}
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()
	l, err := r.Program.Load()
	if err != nil {
		res.Err = err
		return res
	}
	defer l.Close()
	res.Err = onOneCPU(func() error {
		for i, st := range c.Steps {
			run, err := r.runStep(s, l, st)
			run.Step, run.Steps = i+1, len(c.Steps)
			if err != nil {
				return err
			}
			res.Runs = append(res.Runs, run)
			if len(run.Mismatches) > 0 {
				return nil
			}
		}
		return nil
	})
	return res
}

// runStep runs a step's packet Repeat times, each run on the packet as
// given (DESIGN.md pitfall 7: the kernel's own repeat runs it on what the
// previous run left), and checks the maps after the last.
func (r *Runner) runStep(s *Suite, l *lab.LoadedProgram, st *Step) (Run, error) {
	var run Run
	run.Iterations = st.Repeat
	for i := range st.Repeat {
		var err error
		run.Iteration = i + 1
		run.In = st.Packet
		var out Output
		if out, err = Once(l.Program, HookOf(r.Program.Type), st.Packet, st.SKB); err != nil {
			return run, err
		}
		run.Verdict, run.Out = out.Verdict, out.Packet
		if out.Verdict.Hook == HookTC {
			run.SKB = &out.SKB
		}
		if st.Expect.Verdict != nil && run.Verdict != *st.Expect.Verdict {
			run.Mismatches = append(run.Mismatches, Mismatch{Field: "verdict", Want: st.Expect.Verdict.String(), Got: run.Verdict.String(),
				Line: st.Expect.verdictAt[0], Column: st.Expect.verdictAt[1]})
		}
		if st.Expect.Packet != nil {
			run.Mismatches = append(run.Mismatches, st.Expect.Packet.Compare(st.Packet, run.Out)...)
		}
		run.Mismatches = append(run.Mismatches, compareSKB(st.Expect.SKB, out.SKB)...)
		if len(run.Mismatches) > 0 {
			return run, nil
		}
	}
	if len(st.Expect.Maps) == 0 {
		return run, nil
	}
	maps, err := prog.Maps(l.Program, r.Program.Spec)
	if err != nil {
		return run, err
	}
	defer func() {
		for _, m := range maps {
			m.Close()
		}
	}()
	for _, e := range st.Expect.Maps {
		i := slices.IndexFunc(maps, func(m *prog.Map) bool { return m.Name == e.Map })
		if i < 0 {
			names := "(none)"
			for j, m := range maps {
				if j == 0 {
					names = m.Name
				} else {
					names += ", " + m.Name
				}
			}
			return run, fmt.Errorf("%s:%d:%d: expect.maps.%s: the program uses no such map; its maps: %s", s.File, e.Line, e.Column, e.Map, names)
		}
		found, ok, err := maps[i].Check(e.Key, e.Value, r.Resolver)
		var be *btfvalue.Error
		if errors.As(err, &be) {
			return run, fmt.Errorf("%s:%d:%d: expect.maps.%s.%s: %s", s.File, be.Line, be.Column, e.Map, be.Path, be.Msg)
		}
		if err != nil {
			return run, fmt.Errorf("%s:%d:%d: expect.maps.%s: %w", s.File, e.Line, e.Column, e.Map, err)
		}
		if !ok {
			run.Mismatches = append(run.Mismatches, Mismatch{Field: fmt.Sprintf("maps.%s[%s]", e.Map, flow(e.Key)),
				Want: flow(e.Value), Got: found, Line: e.Line, Column: e.Column})
		}
	}
	return run, nil
}

// Output is what a run gives back: the verdict, the packet as the program
// left it, and (TC) its socket buffer's fields.
type Output struct {
	Verdict Verdict
	Packet  []byte
	SKB     SKB
}

// skbContext is the leading part of struct __sk_buff up to priority,
// the last field SKB sets: the kernel zero-fills the rest, and wants
// zero in every field before mark and between mark and priority.
type skbContext struct {
	Len, PktType, Mark, QueueMapping, Protocol, VLANPresent, VLANTCI, VLANProto, Priority uint32
}

// skbOutSize holds the whole struct __sk_buff the kernel writes back
// (192 bytes on 6.x kernels): it refuses a smaller buffer (ENOSPC) and
// writes only what it has into a larger one.
const skbOutSize = 512

// Once runs the program, of hook h, on one packet (a TC program in a
// socket buffer with skb's fields, nil for none) and returns what it
// gave. A TC program's packet, as an XDP one's, starts with its Ethernet
// header, in and out.
func Once(p *ebpf.Program, h Hook, in []byte, skb *SKB) (Output, error) {
	opts := ebpf.RunOptions{Data: in, DataOut: make([]byte, len(in)+headroom), Repeat: 1}
	ctxOut := make([]byte, skbOutSize)
	if h == HookTC {
		var ctx skbContext
		if skb != nil {
			ctx.Mark, ctx.Priority = skb.Mark, skb.Priority
		}
		opts.Context, opts.ContextOut = ctx, ctxOut
	}
	ret, err := p.Run(&opts)
	if err != nil {
		return Output{}, runError(err, h)
	}
	out := Output{Verdict: Verdict{Hook: h, Code: ret}, Packet: opts.DataOut}
	if h == HookTC {
		var back skbContext
		if _, err := binary.Decode(ctxOut, binary.NativeEndian, &back); err != nil {
			return Output{}, err
		}
		out.SKB = SKB{Mark: back.Mark, Priority: back.Priority}
	}
	return out, nil
}

// runError explains a test run the kernel refused.
func runError(err error, h Hook) error {
	switch {
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("BPF_PROG_TEST_RUN: %w: running a program needs root (CAP_BPF and CAP_NET_ADMIN)", err)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("BPF_PROG_TEST_RUN: %w: this kernel cannot test-run %s programs", err, h)
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("BPF_PROG_TEST_RUN: %w: the kernel refused the packet (a packet is at least an Ethernet header, 14 bytes)", err)
	case errors.Is(err, unix.ENOSPC):
		return fmt.Errorf("BPF_PROG_TEST_RUN: %w: the program grew the packet by more than %d bytes", err, headroom)
	}
	return fmt.Errorf("BPF_PROG_TEST_RUN: %w", err)
}

// onOneCPU runs f on one CPU: a test run executes on the caller's CPU,
// and per-CPU maps (the balancer's connection table, counters) must see
// every packet of a case on the same one, as a NIC's RSS keeps a flow.
func onOneCPU(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return fmt.Errorf("CPU affinity: %w", err)
	}
	var one unix.CPUSet
	for cpu := range 1024 {
		if old.IsSet(cpu) {
			one.Set(cpu)
			break
		}
	}
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		return fmt.Errorf("CPU affinity: %w", err)
	}
	defer unix.SchedSetaffinity(0, &old)
	return f()
}

// CanRun says why this process cannot load and test-run programs, or nil.
func CanRun() error {
	if os.Geteuid() != 0 {
		return errors.New("dsrlab test loads programs into the kernel and runs them with BPF_PROG_TEST_RUN, " +
			"which needs root (CAP_BPF, CAP_NET_ADMIN): run it with sudo")
	}
	return nil
}
