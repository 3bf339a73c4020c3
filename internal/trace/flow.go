// Package trace follows one probe flow through a running lab: it captures
// on every interface of the lab at once, pairs the copy of each packet seen
// leaving one node with the copy seen entering the next, names each of
// those hops like the reference README's steps (Request, Forward, IPIP
// Encap, Forward IPIP, DSR Reply, Return), collects what the kernel
// dropped in the lab's namespaces and why, and gives a verdict: where the
// flow went, and where it stopped. On a lab of several hosts, each host is
// watched on that host (by dsrlab's agent on the others), and what they saw
// is put on one clock (merge.go).
package trace

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dsrlab/dsrlab/internal/capture"
	"github.com/dsrlab/dsrlab/topology"
)

// Observation is one packet seen on one interface of the lab.
type Observation struct {
	Time   time.Time
	Iface  *topology.Interface
	Dir    capture.Direction
	Frame  capture.Frame
	Length int
}

// Class is the part a packet plays in the flow.
type Class int

const (
	ClassNone       Class = iota
	ClassRequest          // client → VIP, as the client sent it
	ClassTunnel           // the request inside IPIP, balancer → real
	ClassReply            // VIP → client
	ClassNATRequest       // balancer → real, after DNAT and SNAT
	ClassNATReply         // real → balancer, before the reverse translation
	ClassICMP             // an ICMP error about the flow
)

var classNames = [...]string{"", "request", "tunnel", "reply", "nat-request", "nat-reply", "icmp"}

func (c Class) String() string { return classNames[c] }

// MarshalText names the class in JSON.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a class by name, as a drop from another host's
// watch carries it.
func (c *Class) UnmarshalText(b []byte) error {
	i := slices.Index(classNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("unknown class %q", b)
	}
	*c = Class(i)
	return nil
}

// Flow is the probe connection being traced: what its packets look like
// at each stage, so that the lab's other traffic is left out.
type Flow struct {
	VIP    *topology.VIP
	Client *topology.Node
	// Dst is the address and port probed: the VIP's, or a port chosen
	// for a VIP of every port.
	Dst netip.AddrPort
	// Local is the client socket's address and port.
	Local netip.AddrPort
}

// isLBAddr tells whether a is a balancer's own address: the source a NAT
// balancer gives the requests it forwards.
func (f *Flow) isLBAddr(a netip.Addr) bool {
	for _, lb := range f.VIP.LBs {
		if up := lb.Uplink(); up != nil && up.AddrOf(f.v6()).Addr() == a {
			return true
		}
	}
	return false
}

// realOf returns the VIP's real whose uplink address is a.
func (f *Flow) realOf(a netip.Addr) *topology.Node {
	for _, r := range f.VIP.Reals {
		if up := r.Node.Uplink(); up != nil && up.AddrOf(f.v6()).Addr() == a {
			return r.Node
		}
	}
	return nil
}

func (f *Flow) v6() bool { return f.Dst.Addr().Is6() }

func (f *Flow) proto() uint8 {
	if f.VIP.Proto == topology.ProtoUDP {
		return 17
	}
	return 6
}

// Classify tells which part of the flow a frame is, if any.
func (f *Flow) Classify(fr capture.Frame) Class {
	if len(fr.IP) == 0 {
		return ClassNone
	}
	in := fr.IP[len(fr.IP)-1]
	if (in.Proto == 1 || in.Proto == 58) && in.Transport {
		if icmpError(in) {
			// An error sent to the client or to the balancer is about
			// this flow in a quiet lab; its quote is not decoded.
			if in.Dst == f.Local.Addr() || f.isLBAddr(in.Dst) || in.Src == f.Dst.Addr() {
				return ClassICMP
			}
		}
		return ClassNone
	}
	if in.Proto != f.proto() || !in.Transport {
		return ClassNone
	}
	src := netip.AddrPortFrom(in.Src, in.SrcPort)
	dst := netip.AddrPortFrom(in.Dst, in.DstPort)
	switch {
	case src == f.Local && dst == f.Dst:
		if len(fr.IP) > 1 {
			return ClassTunnel
		}
		return ClassRequest
	case dst == f.Local && src == f.Dst:
		return ClassReply
	case f.VIP.NAT() && f.isLBAddr(in.Src) && f.realOf(in.Dst) != nil && in.DstPort == f.Dst.Port():
		return ClassNATRequest
	case f.VIP.NAT() && f.isLBAddr(in.Dst) && f.realOf(in.Src) != nil && in.SrcPort == f.Dst.Port():
		return ClassNATReply
	}
	return ClassNone
}

// icmpError tells ICMP and ICMPv6 errors (unreachable, too big, time
// exceeded, parameter problem) from the rest.
func icmpError(h capture.IPHeader) bool {
	if h.Proto == 1 {
		return h.ICMPType == 3 || h.ICMPType == 11 || h.ICMPType == 12
	}
	return h.ICMPType >= 1 && h.ICMPType <= 4
}

// Hop is one packet crossing one link, from an interface to its peer. A
// veth shows the same packet leaving one end and entering the other: both
// sightings make one hop. Either may be missing: XDP programs act before
// packet sockets see a frame, so a frame an XDP program sends back out
// (XDP_TX) is seen only where it arrives, and one it drops or redirects
// is seen only where it left.
type Hop struct {
	N        int
	Step     string
	Class    Class
	From, To *topology.Interface
	Out, In  *Observation
	// Decapsulated: the packet entered To as the inner packet of what left
	// From (an XDP decap program stripped the outer header on arrival).
	Decapsulated bool
}

// Time is when the hop was first seen.
func (h *Hop) Time() time.Time {
	if h.Out != nil {
		return h.Out.Time
	}
	return h.In.Time
}

// Frame is the packet as it left, or as it arrived when it was not seen
// leaving.
func (h *Hop) Frame() capture.Frame {
	if h.Out != nil {
		return h.Out.Frame
	}
	return h.In.Frame
}

// pairWindow bounds how far apart the two sightings of one hop may be:
// a veth hands a packet to its peer at once, so a copy much later is a
// retransmission.
const pairWindow = 100 * time.Millisecond

// identity is a packet as it crosses a link: everything but the TTL,
// which routers change between links, not on one.
func identity(hs []capture.IPHeader) string {
	hs = slices.Clone(hs)
	for i := range hs {
		hs[i].TTL = 0
	}
	return fmt.Sprint(hs)
}

// arrival tells whether in is how out arrived: the same packet, or its
// inner packet when an XDP decap program stripped the outer header on
// arrival, before packet sockets saw it.
func arrival(out, in []capture.IPHeader) (ok, decapsulated bool) {
	id := identity(in)
	switch {
	case identity(out) == id:
		return true, false
	case len(out) > 1 && identity(out[1:]) == id:
		return true, true
	}
	return false, false
}

// Assemble turns the flow's sightings into hops, in the order they
// happened, and numbers and names them. Observations of other traffic are
// left out.
func (f *Flow) Assemble(obs []Observation) []*Hop {
	obs = slices.Clone(obs)
	slices.SortStableFunc(obs, func(a, b Observation) int { return a.Time.Compare(b.Time) })
	var hops []*Hop
	// waiting holds hops seen on one side only, by the interface of the
	// missing side.
	waiting := map[*topology.Interface][]*Hop{}
	claim := func(at *topology.Interface, match func(*Hop) bool) *Hop {
		for i, h := range waiting[at] {
			if match(h) {
				waiting[at] = slices.Delete(waiting[at], i, i+1)
				return h
			}
		}
		return nil
	}
	for i := range obs {
		o := &obs[i]
		if o.Iface == nil || o.Iface.Peer == nil {
			continue
		}
		class := f.Classify(o.Frame)
		if class == ClassNone {
			continue
		}
		near := func(h *Hop) bool { return o.Time.Sub(h.Time()).Abs() <= pairWindow }
		switch o.Dir {
		case capture.Out:
			// The copy entering the peer may carry an earlier timestamp
			// when another CPU (or another host) took it.
			h := claim(o.Iface, func(h *Hop) bool {
				if h.Out != nil || !near(h) {
					return false
				}
				ok, decap := arrival(o.Frame.IP, h.In.Frame.IP)
				if ok {
					h.Class, h.Decapsulated = class, decap
				}
				return ok
			})
			if h == nil {
				h = &Hop{Class: class, From: o.Iface, To: o.Iface.Peer}
				hops = append(hops, h)
				waiting[o.Iface.Peer] = append(waiting[o.Iface.Peer], h)
			}
			h.Out = o
		case capture.In:
			h := claim(o.Iface, func(h *Hop) bool {
				if h.In != nil || !near(h) {
					return false
				}
				ok, decap := arrival(h.Out.Frame.IP, o.Frame.IP)
				if ok {
					h.Decapsulated = decap
				}
				return ok
			})
			if h == nil {
				h = &Hop{Class: class, From: o.Iface.Peer, To: o.Iface}
				hops = append(hops, h)
				waiting[o.Iface.Peer] = append(waiting[o.Iface.Peer], h)
			}
			h.In = o
		}
	}
	slices.SortStableFunc(hops, func(a, b *Hop) int { return a.Time().Compare(b.Time()) })
	for i, h := range hops {
		h.N = i + 1
		h.Step = f.step(h)
	}
	return hops
}

// Step names, as the reference README and `dsrlab graph` draw the flow.
const (
	StepRequest     = "Request"
	StepForward     = "Forward"
	StepEncap       = "IPIP Encap"
	StepForwardIPIP = "Forward IPIP"
	StepDSRReply    = "DSR Reply"
	StepReturn      = "Return"
	StepNAT         = "DNAT + SNAT"
	StepReply       = "Reply"
	StepHairpin     = "Hair-pin"
	StepFinalReply  = "Final Reply"
	StepICMP        = "ICMP error"
)

// step names a hop by what the packet is and where it is: the first hop
// of each leg of the flow has the leg's name, the last one the leg's
// arrival name, the ones between are forwards.
func (f *Flow) step(h *Hop) string {
	from, to := h.From.Node, h.To.Node
	switch h.Class {
	case ClassRequest:
		if from == f.Client {
			return StepRequest
		}
	case ClassTunnel:
		if f.VIP.ServedBy(from) {
			return StepEncap
		}
		return StepForwardIPIP
	case ClassReply:
		switch {
		case f.VIP.NAT() && f.VIP.ServedBy(from):
			return StepFinalReply
		case !f.VIP.NAT() && from.Kind == topology.KindReal:
			return StepDSRReply
		case to == f.Client:
			return StepReturn
		}
	case ClassNATRequest:
		if f.VIP.ServedBy(from) {
			return StepNAT
		}
	case ClassNATReply:
		switch {
		case from.Kind == topology.KindReal:
			return StepReply
		case f.VIP.ServedBy(to):
			return StepHairpin
		}
	case ClassICMP:
		return StepICMP
	}
	return StepForward
}

// Loop is a routing loop among the hops: the same Len hops, one packet
// going round, Count times in all from hop Start on, its TTL falling.
type Loop struct {
	Start, Len, Count int // Start indexes the hops
	FirstTTL, LastTTL uint8
}

// hopKey is a hop without its packet's TTLs, so that the same packet on
// the same link matches on every round of a loop.
func hopKey(h *Hop) string {
	return fmt.Sprint(h.From, h.To, h.Class, identity(h.Frame().IP))
}

// ttl is the packet's innermost TTL (hop limit), the one every router
// on a loop decrements.
func ttl(h *Hop) uint8 {
	ip := h.Frame().IP
	return ip[len(ip)-1].TTL
}

// FindLoop finds the first routing loop: a hop that comes back with a
// lower TTL. A retransmission comes back with the same TTL and is not one.
func FindLoop(hops []*Hop) (Loop, bool) {
	for i := range hops {
		for k := 1; i+k < len(hops); k++ {
			if hopKey(hops[i+k]) != hopKey(hops[i]) || ttl(hops[i+k]) >= ttl(hops[i]) {
				continue
			}
			l := Loop{Start: i, Len: k, Count: 1, FirstTTL: ttl(hops[i])}
			for next := i + k; next+k <= len(hops); next += k {
				same := true
				for j := range k {
					same = same && hopKey(hops[next+j]) == hopKey(hops[i+j])
				}
				if !same {
					break
				}
				l.Count++
			}
			l.LastTTL = ttl(hops[i+(l.Count-1)*k])
			return l, true
		}
	}
	return Loop{}, false
}

// path names the nodes the loop goes round.
func (l Loop) path(hops []*Hop) string {
	var nodes []string
	for _, h := range hops[l.Start : l.Start+l.Len] {
		nodes = append(nodes, h.From.Node.Name)
	}
	nodes = append(nodes, hops[l.Start].From.Node.Name)
	return strings.Join(nodes, " → ")
}
