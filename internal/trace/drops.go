package trace

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/dsrlab/dsrlab/internal/capture"
)

// Drop is a packet the kernel freed as dropped in one of the lab's
// namespaces, or an XDP program's failure there.
type Drop struct {
	Node  string `json:"node"`
	Iface string `json:"iface,omitempty"`
	// Reason is the kernel's skb_drop_reason name (NO_SOCKET,
	// IP_NOPROTO...), or the XDP action of an exception (XDP_ABORTED).
	Reason string `json:"reason"`
	// Function is the kernel function that dropped it.
	Function string `json:"function,omitempty"`
	// Exception: an XDP program failed (xdp:xdp_exception); Reason is
	// then its action. Otherwise the kernel freed a packet as dropped.
	Exception bool `json:"xdp_exception,omitempty"`
	// XDP: an XDP program's doing, an exception or an XDP_DROP.
	XDP bool `json:"xdp"`
	// TC: a TC program's verdict (TC_ACT_SHOT) dropped it.
	TC bool `json:"tc,omitempty"`
	// Program names the XDP program, when XDP, or the TC programs on the
	// hook, when TC.
	Program string        `json:"program,omitempty"`
	Packet  string        `json:"packet,omitempty"`
	Class   Class         `json:"class,omitempty"`
	Count   int           `json:"count"`
	Frame   capture.Frame `json:"-"`
}

// String says what happened, e.g. "real eth0: IP_NOPROTO in
// ip_local_deliver_finish", "katran eth0: XDP program xdp_verdict dropped
// it (XDP_DROP; ...)".
func (d Drop) String() string {
	where := d.Node
	if d.Iface != "" {
		where += " " + d.Iface
	}
	prog := "the XDP program"
	if d.Program != "" {
		prog = "XDP program " + d.Program
	}
	var what string
	switch {
	case d.Exception:
		what = fmt.Sprintf("%s returned %s", prog, d.Reason)
	case d.XDP:
		what = fmt.Sprintf("%s dropped it (XDP_DROP; kernel reason %s in %s)", prog, d.Reason, d.Function)
	case d.TC:
		tc := "a TC program"
		if d.Program != "" {
			tc = "TC program " + d.Program
		}
		what = fmt.Sprintf("%s dropped it (TC_ACT_SHOT; kernel reason %s in %s)", tc, d.Reason, d.Function)
	default:
		what = d.Reason
		if d.Function != "" {
			what += " in " + d.Function
		}
	}
	if d.Count > 1 {
		what += fmt.Sprintf(" (%d times)", d.Count)
	}
	return where + ": " + what
}

// tcDirection tells a drop by a TC program's verdict: the kernel gives
// the reason TC_INGRESS or TC_EGRESS for a TC_ACT_SHOT on that hook.
func tcDirection(reason string) (string, bool) {
	switch reason {
	case "TC_INGRESS":
		return "ingress", true
	case "TC_EGRESS":
		return "egress", true
	}
	return "", false
}

// xdpDrop tells a drop by an XDP program's verdict from the kernel's own:
// generic XDP gives the reason XDP, native XDP on a veth frees the skb in
// veth's XDP receive path with no specific reason.
func xdpDrop(reason, function string) bool {
	return reason == "XDP" || strings.HasPrefix(function, "veth_xdp")
}

// xdpActions are the XDP verdicts by value (enum xdp_action, UAPI).
var xdpActions = [...]string{"XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT"}

// XDPAction names an XDP verdict.
func XDPAction(act uint32) string {
	if int(act) < len(xdpActions) {
		return xdpActions[act]
	}
	return fmt.Sprintf("XDP action %d", act)
}

// ReasonName names an skb_drop_reason from the kernel's names. The high
// 16 bits of a reason select a subsystem (mac80211, openvswitch...) whose
// reasons are another enum.
func ReasonName(names map[uint32]string, reason uint32) string {
	if n, ok := names[reason]; ok {
		return n
	}
	if sub := reason >> 16; sub != 0 {
		return fmt.Sprintf("subsystem %d reason %d", sub, reason&0xffff)
	}
	return fmt.Sprintf("reason %d", reason)
}

// Symbols resolves kernel text addresses to function names.
type Symbols struct {
	addrs []uint64
	names []string
}

// ReadSymbols parses /proc/kallsyms ("ffffffff81000000 T _stext"),
// keeping text symbols. Without root the addresses read as zero and
// nothing resolves.
func ReadSymbols(r io.Reader) (*Symbols, error) {
	type sym struct {
		addr uint64
		name string
	}
	var syms []sym
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || (f[1] != "t" && f[1] != "T") {
			continue
		}
		a, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil || a == 0 {
			continue
		}
		syms = append(syms, sym{a, f[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(syms, func(i, j int) bool { return syms[i].addr < syms[j].addr })
	s := &Symbols{}
	for _, x := range syms {
		s.addrs = append(s.addrs, x.addr)
		s.names = append(s.names, x.name)
	}
	return s, nil
}

// Name is the function containing addr, or "" when it is unknown.
func (s *Symbols) Name(addr uint64) string {
	if s == nil {
		return ""
	}
	i := sort.Search(len(s.addrs), func(i int) bool { return s.addrs[i] > addr })
	if i == 0 {
		return ""
	}
	return s.names[i-1]
}

// socketTeardown are the reasons of packets freed with a closing socket's
// queues: the probe's own end, not a loss on the path.
var socketTeardown = map[string]bool{"QUEUE_PURGE": true, "SOCKET_CLOSE": true}

// collect keeps the flow's drops, counting repeats (retransmissions) once
// each, and every XDP exception in the lab, which has no packet to match.
func (f *Flow) collect(drops []Drop) []Drop {
	var out []Drop
	seen := map[string]int{}
	for _, d := range drops {
		if socketTeardown[d.Reason] {
			continue
		}
		if !d.Exception {
			d.Class = f.Classify(d.Frame)
			if d.Class == ClassNone {
				continue
			}
		}
		key := fmt.Sprint(d.Node, d.Iface, d.Reason, d.Function, d.Program, d.Class)
		if i, ok := seen[key]; ok {
			out[i].Count++
			continue
		}
		d.Count = 1
		seen[key] = len(out)
		out = append(out, d)
	}
	// A packet whose XDP program aborted is freed like one it dropped:
	// the exception says more.
	aborted := map[string]bool{}
	for _, d := range out {
		if d.Exception {
			aborted[d.Node+" "+d.Iface] = true
		}
	}
	return slices.DeleteFunc(out, func(d Drop) bool { return d.XDP && !d.Exception && aborted[d.Node+" "+d.Iface] })
}
