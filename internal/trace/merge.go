package trace

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dsrlab/dsrlab/internal/capture"
	"github.com/dsrlab/dsrlab/topology"
)

// merge puts what the hosts' watches saw on one time line: the packets as
// observations of the topology's interfaces, their times on one clock
// (alignClocks), the drops decoded, the interfaces not up, and why drops
// were not watched on the hosts where they were not.
func merge(t *topology.Topology, reports []*hostReport) (obs []Observation, drops []Drop, notUp []string, dropsOff string) {
	var off []string
	for _, rep := range reports {
		notUp = append(notUp, rep.NotUp...)
		for _, p := range rep.Packets {
			if ifc := iface(t, p.Node, p.Iface); ifc != nil {
				obs = append(obs, Observation{Time: p.Time, Iface: ifc, Dir: p.Dir, Frame: p.frame(), Length: p.Length})
			}
		}
		for _, d := range rep.Drops {
			drops = append(drops, d.drop())
		}
		switch {
		case rep.DropsOff == "":
		case len(reports) == 1:
			off = append(off, rep.DropsOff)
		default:
			off = append(off, fmt.Sprintf("host %s: %s", rep.Host, rep.DropsOff))
		}
	}
	alignClocks(obs)
	return obs, drops, notUp, strings.Join(off, "; ")
}

func iface(t *topology.Topology, node, name string) *topology.Interface {
	if n := t.Node(node); n != nil {
		for _, ifc := range n.Interfaces {
			if ifc.Name == name {
				return ifc
			}
		}
	}
	return nil
}

func hostOf(o *Observation) string { return o.Iface.Node.Host.Name }

// alignClocks brings the times of packets captured on other hosts onto
// the local host's clock (or, in a lab with no node there, the first
// host's). Each host stamps its packets by its own clock, and two
// machines' clocks may differ by more than a packet takes to cross the
// lab, or than the window that pairs its two sightings. The links between
// hosts tell by how much: a packet leaves one end, then arrives at the
// other. With packets crossing both ways between two hosts (request and
// reply), the offset is the midpoint of the fastest crossing each way, as
// NTP takes it, assuming both ways take as long; with crossings one way
// only, the fastest is taken as instantaneous, which errs by the link's
// latency. Either way no packet arrives before it left. A host whose
// offset cannot be told, having no crossing, keeps its own clock.
func alignClocks(obs []Observation) {
	off := clockOffsets(crossings(obs))
	for i := range obs {
		obs[i].Time = obs[i].Time.Add(-off[hostOf(&obs[i])])
	}
}

// hostPair is a direction between two hosts.
type hostPair struct{ from, to string }

// crossings gives, for each direction between two hosts, the shortest
// time a packet took between them by the two clocks: arrival time on the
// receiving host's clock minus departure time on the sending host's.
//
// Copies of one packet (retransmissions) look alike. When as many arrived
// as left, the k-th to arrive is the k-th to have left. When fewer
// arrived, the last ones to leave are taken as those that arrived (a copy
// is sent again because an earlier one was lost), which may be wrong: such
// crossings count only for a direction that has no sure one.
func crossings(obs []Observation) map[hostPair]time.Duration {
	// Copies of a packet by the link end they left and what they are.
	type copies struct {
		at *topology.Interface
		id string
	}
	left := map[copies][]*Observation{}
	var ins []*Observation
	for i := range obs {
		o := &obs[i]
		if o.Iface == nil || o.Iface.Peer == nil || o.Iface.Peer.Node.Host == o.Iface.Node.Host {
			continue
		}
		switch o.Dir {
		case capture.Out:
			key := copies{o.Iface, identity(o.Frame.IP)}
			left[key] = append(left[key], o)
		case capture.In:
			ins = append(ins, o)
		}
	}
	byTime := func(a, b *Observation) int { return a.Time.Compare(b.Time) }
	arrived := map[copies][]*Observation{}
	for _, in := range ins {
		for key, outs := range left {
			if key.at != in.Iface.Peer {
				continue
			}
			if ok, _ := arrival(outs[0].Frame.IP, in.Frame.IP); ok {
				arrived[key] = append(arrived[key], in)
				break
			}
		}
	}
	sure, unsure := map[hostPair]time.Duration{}, map[hostPair]time.Duration{}
	for key, ins := range arrived {
		outs := left[key]
		slices.SortStableFunc(outs, byTime)
		slices.SortStableFunc(ins, byTime)
		least := sure
		if len(ins) != len(outs) {
			least = unsure
		}
		// The arrivals pair with the last departures; only the first
		// ones, when more left than arrived, pair with none.
		outs = outs[max(0, len(outs)-len(ins)):]
		for i, in := range ins[:min(len(ins), len(outs))] {
			p, d := hostPair{hostOf(outs[i]), hostOf(in)}, in.Time.Sub(outs[i].Time)
			if cur, ok := least[p]; !ok || d < cur {
				least[p] = d
			}
		}
	}
	for p, d := range unsure {
		if _, ok := sure[p]; !ok {
			sure[p] = d
		}
	}
	return sure
}

// clockOffsets turns crossing times into how far each host's clock is
// ahead of the reference host's, host by host out from it.
func clockOffsets(least map[hostPair]time.Duration) map[string]time.Duration {
	var hosts []string
	for p := range least {
		hosts = append(hosts, p.from, p.to)
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	off := map[string]time.Duration{}
	// The local host's clock is the reference when it has a part.
	for _, root := range append([]string{topology.LocalHost}, hosts...) {
		if _, ok := off[root]; ok {
			continue
		}
		off[root] = 0
		for queue := []string{root}; len(queue) > 0; queue = queue[1:] {
			x := queue[0]
			for _, y := range hosts {
				if _, ok := off[y]; ok {
					continue
				}
				there, okThere := least[hostPair{x, y}]
				back, okBack := least[hostPair{y, x}]
				switch {
				case okThere && okBack:
					off[y] = off[x] + (there-back)/2
				case okThere:
					off[y] = off[x] + there
				case okBack:
					off[y] = off[x] - back
				default:
					continue
				}
				queue = append(queue, y)
			}
		}
	}
	return off
}
