package pkttest

import (
	"fmt"
	"strconv"
	"strings"
)

// Verdict is what an XDP program returns: enum xdp_action.
type Verdict uint32

// The XDP actions.
const (
	XDPAborted Verdict = iota
	XDPDrop
	XDPPass
	XDPTX
	XDPRedirect
)

var verdictNames = []string{"XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT"}

// String names an XDP action; another value is shown as the number it
// is, said to be none (the kernel treats it as XDP_ABORTED, with a
// warning).
func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return fmt.Sprintf("%d (no XDP action)", uint32(v))
}

// Known tells an XDP action from any other value a program returns.
func (v Verdict) Known() bool { return int(v) < len(verdictNames) }

// ParseVerdict reads XDP_TX, tx or TX, or a number.
func ParseVerdict(s string) (Verdict, error) {
	up := strings.ToUpper(s)
	for i, name := range verdictNames {
		if up == name || "XDP_"+up == name {
			return Verdict(i), nil
		}
	}
	if n, err := strconv.ParseUint(s, 0, 32); err == nil {
		return Verdict(n), nil
	}
	return 0, fmt.Errorf("%q is not a verdict: want one of %s", s, strings.Join(verdictNames, ", "))
}
