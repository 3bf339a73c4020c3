package trace

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/dsrlab/dsrlab/internal/capture"
	"github.com/dsrlab/dsrlab/internal/capture/filter"
	"github.com/dsrlab/dsrlab/topology"
)

// A trace watches each host of the lab with a watch of its own (capture
// and drop tracer over that host's nodes): dsrlab's own host in process,
// every other one inside dsrlab's agent there, `dsrlab trace --watch`
// speaking JSON, one value per line, over the exec's standard streams:
//
//	dsrlab → agent   watchRequest
//	agent → dsrlab   {"ready": true}            sockets and tracer attached
//	dsrlab → agent   {"probe": probeRequest}    only on the client's host
//	dsrlab → agent   {"cancel": true}           if the trace is cut short meanwhile
//	agent → dsrlab   {"probe": probeResult}
//	dsrlab → agent   {"stop": flowRef}          after the probe
//	agent → dsrlab   {"seen": hostReport}       after settle; the agent exits
//
// The end of dsrlab's input at any point stops the watch and ends it.

// watchRequest starts a watch on another host.
type watchRequest struct {
	Topology []byte `json:"topology"` // resolved (topology.Resolved)
	File     string `json:"file"`
	Host     string `json:"host"`
	// Namespaces are the network namespaces of the host's nodes, as files
	// on that host, by node name.
	Namespaces map[string]string `json:"namespaces"`
}

// watchCommand is what dsrlab asks of a running watch: one of the fields.
type watchCommand struct {
	Probe *probeRequest `json:"probe,omitempty"`
	// Cancel cuts the running probe short.
	Cancel bool     `json:"cancel,omitempty"`
	Stop   *flowRef `json:"stop,omitempty"`
}

// watchReply is what a watch answers: one of the fields.
type watchReply struct {
	Ready bool         `json:"ready,omitempty"`
	Probe *probeResult `json:"probe,omitempty"`
	Seen  *hostReport  `json:"seen,omitempty"`
}

// probeRequest asks the watch holding the client's namespace to probe.
type probeRequest struct {
	Client string         `json:"client"`
	Dst    netip.AddrPort `json:"dst"`
	Proto  topology.Proto `json:"proto"`
}

// probeResult is the probe's exchange (lab.Exchange) and its failure.
type probeResult struct {
	Answer string         `json:"answer,omitempty"`
	From   string         `json:"from,omitempty"`
	Local  netip.AddrPort `json:"local"`
	Err    string         `json:"error,omitempty"`
}

// flowRef names a Flow to a watch, which has the same topology.
type flowRef struct {
	VIP    string         `json:"vip"` // VIP.String()
	Client string         `json:"client"`
	Dst    netip.AddrPort `json:"dst"`
	Local  netip.AddrPort `json:"local"`
}

func (f *Flow) ref() flowRef {
	return flowRef{VIP: f.VIP.String(), Client: f.Client.Name, Dst: f.Dst, Local: f.Local}
}

func (r flowRef) flow(t *topology.Topology) (*Flow, error) {
	f := &Flow{Client: t.Node(r.Client), Dst: r.Dst, Local: r.Local}
	for _, v := range t.VIPs {
		if v.String() == r.VIP {
			f.VIP = v
		}
	}
	if f.VIP == nil || f.Client == nil {
		return nil, fmt.Errorf("lab %q has no VIP %s or no node %q", t.Name, r.VIP, r.Client)
	}
	return f, nil
}

// hostReport is what one host's watch saw of the flow: its packets as
// captured, and the kernel's drops, named on that host (the reasons by its
// kernel's BTF, the functions by its kallsyms).
type hostReport struct {
	Host     string     `json:"host"`
	Packets  []sighting `json:"packets"`
	Drops    []seenDrop `json:"drops"`
	DropsOff string     `json:"drops_off,omitempty"` // why drops were not watched
	NotUp    []string   `json:"not_up,omitempty"`    // interfaces not up, "node:iface state"
}

// sighting is one packet captured on one interface, as read: the host
// that decodes it is not always the one that captured it.
type sighting struct {
	// Time is by the capturing host's clock.
	Time   time.Time         `json:"time"`
	Node   string            `json:"node"`
	Iface  string            `json:"iface"`
	Dir    capture.Direction `json:"dir"`
	Length int               `json:"length"` // on the wire
	Link   filter.LinkType   `json:"link"`
	Data   []byte            `json:"data"`
}

func (s sighting) frame() capture.Frame { return capture.Decode(s.Data, s.Link) }

// seenDrop is a drop with the head of its packet (from the network
// header on), which the Drop it becomes decodes.
type seenDrop struct {
	Drop
	Head []byte `json:"head,omitempty"`
}

// drop is the Drop with its packet decoded.
func (s seenDrop) drop() Drop {
	d := s.Drop
	d.Frame = capture.Decode(s.Head, filter.RawIP)
	if len(d.Frame.IP) > 0 {
		d.Packet = d.Frame.String(false)
	}
	return d
}

// keep trims what a watch saw to the flow's part: every other packet in
// the lab, and drops of other packets, stay on their host.
func (f *Flow) keep(s *hostReport) {
	pkts := s.Packets[:0]
	for _, p := range s.Packets {
		if f.Classify(p.frame()) != ClassNone {
			pkts = append(pkts, p)
		}
	}
	s.Packets = pkts
	drops := s.Drops[:0]
	for _, d := range s.Drops {
		if d.Exception || f.Classify(d.drop().Frame) != ClassNone {
			drops = append(drops, d)
		}
	}
	s.Drops = drops
}
