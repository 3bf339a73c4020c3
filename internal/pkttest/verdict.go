package pkttest

import (
	"fmt"
	"strconv"
	"strings"
)

// Hook is where a program runs, which says what its return value means.
type Hook uint8

const (
	// HookXDP: an XDP program, returning an enum xdp_action.
	HookXDP Hook = iota
	// HookTC: a TC (sched_cls, direct-action) program, returning a
	// TC_ACT_* of include/uapi/linux/pkt_cls.h.
	HookTC
)

func (h Hook) String() string {
	if h == HookTC {
		return "TC"
	}
	return "XDP"
}

// Verdict is what a program returned, read as its hook reads it.
type Verdict struct {
	Hook Hook
	Code uint32
}

// The XDP actions.
var (
	XDPAborted  = Verdict{HookXDP, 0}
	XDPDrop     = Verdict{HookXDP, 1}
	XDPPass     = Verdict{HookXDP, 2}
	XDPTX       = Verdict{HookXDP, 3}
	XDPRedirect = Verdict{HookXDP, 4}
)

// The TC actions a direct-action program returns.
var (
	TCUnspec     = Verdict{HookTC, tcCode(-1)}
	TCOK         = Verdict{HookTC, 0}
	TCReclassify = Verdict{HookTC, 1}
	TCShot       = Verdict{HookTC, 2}
	TCPipe       = Verdict{HookTC, 3}
	TCStolen     = Verdict{HookTC, 4}
	TCQueued     = Verdict{HookTC, 5}
	TCRepeat     = Verdict{HookTC, 6}
	TCRedirect   = Verdict{HookTC, 7}
	TCTrap       = Verdict{HookTC, 8}
)

// tcCode is a TC action as the program's 32-bit return value holds it
// (TC_ACT_UNSPEC is -1).
func tcCode(n int32) uint32 { return uint32(n) }

// actions names each hook's verdicts, and tells those after which the
// packet goes on (to the stack, a device, the next filter): what it has
// become then matters.
var actions = map[Hook][]struct {
	v      Verdict
	name   string
	goesOn bool
}{
	HookXDP: {
		{XDPAborted, "XDP_ABORTED", false}, {XDPDrop, "XDP_DROP", false}, {XDPPass, "XDP_PASS", true},
		{XDPTX, "XDP_TX", true}, {XDPRedirect, "XDP_REDIRECT", true},
	},
	HookTC: {
		{TCUnspec, "TC_ACT_UNSPEC", true}, {TCOK, "TC_ACT_OK", true}, {TCReclassify, "TC_ACT_RECLASSIFY", true},
		{TCShot, "TC_ACT_SHOT", false}, {TCPipe, "TC_ACT_PIPE", true}, {TCStolen, "TC_ACT_STOLEN", false},
		{TCQueued, "TC_ACT_QUEUED", false}, {TCRepeat, "TC_ACT_REPEAT", true}, {TCRedirect, "TC_ACT_REDIRECT", true},
		{TCTrap, "TC_ACT_TRAP", false},
	},
}

// prefixes are what the short forms of a hook's names leave out.
var prefixes = map[Hook]string{HookXDP: "XDP_", HookTC: "TC_ACT_"}

func (v Verdict) name() (string, bool) {
	for _, a := range actions[v.Hook] {
		if a.v == v {
			return a.name, true
		}
	}
	return "", false
}

// String names the action; another value is shown as the number it is,
// said to be none (XDP treats it as XDP_ABORTED, with a warning; TC as
// TC_ACT_OK).
func (v Verdict) String() string {
	if name, ok := v.name(); ok {
		return name
	}
	return fmt.Sprintf("%s (no %s action)", v.Number(), v.Hook)
}

// Number is the value as a case file writes it: TC's signed, XDP's not.
func (v Verdict) Number() string {
	if v.Hook == HookTC {
		return strconv.Itoa(int(int32(v.Code)))
	}
	return strconv.FormatUint(uint64(v.Code), 10)
}

// Known tells an action of the hook from any other value a program
// returns.
func (v Verdict) Known() bool {
	_, ok := v.name()
	return ok
}

// GoesOn tells a verdict after which the packet goes on somewhere, as
// the program left it, from one that drops or consumes it.
func (v Verdict) GoesOn() bool {
	for _, a := range actions[v.Hook] {
		if a.v == v {
			return a.goesOn
		}
	}
	return false
}

// names lists a hook's verdicts.
func names(h Hook) string {
	var out []string
	for _, a := range actions[h] {
		out = append(out, a.name)
	}
	return strings.Join(out, ", ")
}

// Target is the program a case file's cases run, as far as reading them
// needs it: its hook says which verdicts it returns.
type Target struct {
	Hook Hook
	// Name says which program it is in messages ("" for the program).
	Name string
}

// ParseVerdict reads a verdict of t's hook: its name (XDP_TX,
// TC_ACT_SHOT), the name without its prefix (tx, shot), or a number (-1
// for TC_ACT_UNSPEC). A name of the other hook's is a mistake that says
// so.
func ParseVerdict(s string, t Target) (Verdict, error) {
	h := t.Hook
	up := strings.ToUpper(s)
	find := func(h Hook) (Verdict, bool) {
		for _, a := range actions[h] {
			if up == a.name || prefixes[h]+up == a.name {
				return a.v, true
			}
		}
		return Verdict{}, false
	}
	if v, ok := find(h); ok {
		return v, nil
	}
	if n, err := strconv.ParseInt(s, 0, 64); err == nil && n >= -1<<31 && n < 1<<32 && (n >= 0 || h == HookTC) {
		return Verdict{h, uint32(n)}, nil
	}
	for other := range actions {
		if _, ok := find(other); ok && other != h {
			prog := "the program"
			if t.Name != "" {
				prog = t.Name
			}
			return Verdict{}, fmt.Errorf("%s is %s verdict, and %s is %s program: want one of %s", s, article(other), prog, article(h), names(h))
		}
	}
	return Verdict{}, fmt.Errorf("%q is not a verdict: want one of %s", s, names(h))
}

func article(h Hook) string {
	if h == HookXDP {
		return "an XDP"
	}
	return "a TC"
}
