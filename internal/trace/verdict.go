package trace

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/dsrlab/dsrlab/topology"
)

// Paths a verdict reports.
const (
	PathDirect  = "direct return"
	PathHairpin = "hair-pin (NAT)"
	PathCrossed = "reply crossed the balancer"
)

// Verdict is the outcome of a trace.
type Verdict struct {
	Pass bool   `json:"pass"`
	Path string `json:"path,omitempty"`
	// AnsweredBy is the real the reply came from, "real2 10.111.223.11".
	AnsweredBy string `json:"answered_by,omitempty"`
	// LastSeen is the last place the flow was seen, when it did not
	// complete; Expected is what should have happened there next.
	LastSeen string `json:"last_seen,omitempty"`
	Expected string `json:"expected,omitempty"`
	// Node is where the flow stopped.
	Node    string `json:"node,omitempty"`
	Summary string `json:"summary"`
}

// Probe is what the probing client got.
type Probe struct {
	Answer string `json:"answer,omitempty"`
	From   string `json:"from,omitempty"` // the answer's source address
	Err    string `json:"error,omitempty"`
}

// Judge gives the verdict on a traced flow: answered and returned the way
// its mode wants (DSR: never through the balancer; NAT: hair-pin through
// it), or where it stopped, what should have happened next, the lab's
// interfaces that were not up, and what the kernel dropped there.
func (f *Flow) Judge(hops []*Hop, p Probe, drops []Drop, notUp ...string) Verdict {
	var v Verdict
	var crossed *Hop
	for _, h := range hops {
		switch {
		case v.AnsweredBy == "" && (h.Class == ClassReply && !f.VIP.NAT() || h.Class == ClassNATReply) &&
			h.From.Node.Kind == topology.KindReal:
			v.AnsweredBy = h.From.Node.Name + " " + h.From.AddrOf(f.v6()).Addr().String()
		case crossed == nil && h.Class == ClassReply && !f.VIP.NAT() && (f.VIP.ServedBy(h.From.Node) || f.VIP.ServedBy(h.To.Node)):
			crossed = h
		}
	}
	if p.Err == "" {
		answered := "answered"
		if v.AnsweredBy != "" {
			answered += " by " + v.AnsweredBy
		}
		switch {
		case p.From != "" && p.From != f.Dst.String():
			v.Summary = fmt.Sprintf("%s, but from %s, not the VIP %s", answered, p.From, f.Dst)
		case f.VIP.NAT():
			v.Pass, v.Path = true, PathHairpin
			v.Summary = fmt.Sprintf("%s through %s: %s, as a NAT VIP does", answered, f.VIP.LBNames(), PathHairpin)
		case crossed != nil:
			v.Path = PathCrossed
			v.Summary = fmt.Sprintf("%s, but the reply crossed the balancer (hop %d, %s → %s): not direct return",
				answered, crossed.N, crossed.From, crossed.To)
		default:
			v.Pass, v.Path = true, PathDirect
			v.Summary = fmt.Sprintf("%s: %s, the reply never crossed %s", answered, PathDirect, f.VIP.LBNames())
		}
		return v
	}
	var last *Hop
	for _, h := range hops {
		if h.Class != ClassICMP {
			last = h
		}
	}
	if last == nil {
		v.Node = f.Client.Name
		v.LastSeen = fmt.Sprintf("nothing of the flow left %s", f.Client.Name)
		v.Expected = fmt.Sprintf("%s should have sent %s to its gateway", f.Client.Name, f.Dst)
	} else {
		v.Node = last.To.Node.Name
		v.LastSeen, v.Expected = f.stoppedAt(last)
	}
	parts := []string{"no answer (" + p.Err + ")", v.LastSeen, v.Expected}
	if len(notUp) > 0 {
		parts = append(parts, "not up: "+strings.Join(notUp, ", "))
	}
	if l, ok := FindLoop(hops); ok {
		parts = append(parts, fmt.Sprintf("routing loop: %s, %d times (TTL %d → %d)", l.path(hops), l.Count, l.FirstTTL, l.LastTTL))
	}
	// An ICMP error is named once, where it was first seen: after that
	// it is only forwarded.
	icmp := map[string]bool{}
	for _, h := range hops {
		if id := identity(h.Frame().IP); h.Class == ClassICMP && !icmp[id] {
			icmp[id] = true
			parts = append(parts, fmt.Sprintf("%s sent %s", h.From.Node.Name, h.Frame().String(false)))
		}
	}
	// The drops where the flow stopped come first: they are the answer.
	var here, elsewhere []string
	for _, d := range drops {
		if d.Node == v.Node {
			here = append(here, d.String())
		} else {
			elsewhere = append(elsewhere, d.String())
		}
	}
	if len(here)+len(elsewhere) > 0 {
		parts = append(parts, "kernel: "+strings.Join(append(here, elsewhere...), "; "))
	}
	v.Summary = strings.Join(parts, "; ")
	return v
}

// stoppedAt describes the flow's last hop and what its next one should
// have been.
func (f *Flow) stoppedAt(h *Hop) (lastSeen, expected string) {
	at := h.To.Node
	if h.In != nil {
		lastSeen = fmt.Sprintf("reached %s %s", at.Name, h.To.Name)
		switch {
		case h.Decapsulated:
			lastSeen += " decapsulated"
		case len(h.In.Frame.IP) > 1:
			lastSeen += " still encapsulated (IPIP)"
		}
	} else {
		// Not seen arriving: an XDP program took it first, or the
		// receiving side dropped it before packet sockets saw it.
		lastSeen = fmt.Sprintf("left %s %s for %s %s, not seen arriving", h.From.Node.Name, h.From.Name, at.Name, h.To.Name)
	}
	forwardTo := func(what string, dst netip.Addr) string {
		note := ""
		if h.Class == ClassRequest {
			note = fmt.Sprintf(" (%s serves it)", f.VIP.LBNames())
		}
		return fmt.Sprintf("%s should have forwarded %s towards %s%s; no such packet left %s", at.Name, what, dst, note, at.Name)
	}
	inner := h.Frame().IP[len(h.Frame().IP)-1]
	switch {
	case h.Class == ClassRequest && f.VIP.ServedBy(at) && f.VIP.NAT():
		expected = fmt.Sprintf("%s should have translated it (DNAT + SNAT) to a real; nothing left %s", at.Name, at.Name)
	case h.Class == ClassRequest && f.VIP.ServedBy(at):
		expected = fmt.Sprintf("%s should have sent it back out encapsulated (IPIP) to a real; no IPIP packet was seen leaving %s", at.Name, at.Name)
	case h.Class == ClassRequest:
		expected = forwardTo("the request", f.Dst.Addr())
	case h.Class == ClassTunnel && at.Kind == topology.KindReal && !h.Decapsulated && h.In != nil:
		expected = fmt.Sprintf("%s should have decapsulated it (decap program or ipip device) and answered from %s; no reply left %s", at.Name, f.Dst, at.Name)
	case h.Class == ClassTunnel && at.Kind == topology.KindReal,
		h.Class == ClassNATRequest && at.Kind == topology.KindReal:
		expected = fmt.Sprintf("no reply left %s: it should have answered from %s", at.Name, replySource(f))
	case h.Class == ClassTunnel:
		expected = forwardTo("the IPIP packet", h.Frame().IP[0].Dst)
	case h.Class == ClassNATRequest:
		expected = forwardTo("the translated request", inner.Dst)
	case h.Class == ClassNATReply && f.VIP.ServedBy(at):
		expected = fmt.Sprintf("%s should have translated the reply back and sent it to %s", at.Name, f.Local.Addr())
	case h.Class == ClassNATReply:
		expected = forwardTo("the reply", inner.Dst)
	case h.Class == ClassReply && at == f.Client:
		expected = fmt.Sprintf("the reply reached %s, but the probe did not take it", f.Client.Name)
	case h.Class == ClassReply:
		expected = forwardTo("the reply", f.Local.Addr())
	}
	return lastSeen, expected
}

// replySource is the address the real's answer should come from: the VIP
// it holds on lo (DSR), or its own address (NAT).
func replySource(f *Flow) string {
	if f.VIP.NAT() {
		return "its own address to the balancer that translated the request"
	}
	return fmt.Sprintf("%s (the VIP on its lo, served by its echo service)", f.Dst)
}
