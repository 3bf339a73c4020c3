package trace

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/capture"
	"github.com/dsrlab/dsrlab/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	client  = "10.111.220.11:40000"
	vip     = "192.168.10.1:50007"
	lbAddr  = "10.111.221.11"
	real1   = "10.111.222.11"
	real2   = "10.111.223.11"
	synFlag = 0x02
	ackFlag = 0x10
)

func load(t *testing.T, file string) *topology.Topology {
	t.Helper()
	topo, err := topology.Load(filepath.Join("..", "..", file))
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func tcp(src, dst string, flags uint8) capture.Frame {
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	return capture.Frame{IP: []capture.IPHeader{{Src: s.Addr(), Dst: d.Addr(), Proto: 6, TTL: 64, Transport: true,
		SrcPort: s.Port(), DstPort: d.Port(), TCPFlags: flags}}}
}

func udp(src, dst string) capture.Frame {
	f := tcp(src, dst, 0)
	f.IP[0].Proto = 17
	return f
}

func ipip(outerSrc, outerDst string, inner capture.Frame) capture.Frame {
	outer := capture.IPHeader{Src: netip.MustParseAddr(outerSrc), Dst: netip.MustParseAddr(outerDst), Proto: 4, TTL: 64}
	return capture.Frame{IP: append([]capture.IPHeader{outer}, inner.IP...)}
}

// sight is one sighting: "node:iface", out or in, the frame.
type sight struct {
	at  string
	dir capture.Direction
	fr  capture.Frame
}

func out(at string, fr capture.Frame) sight { return sight{at, capture.Out, fr} }
func in(at string, fr capture.Frame) sight  { return sight{at, capture.In, fr} }

// observe timestamps the sightings 10µs apart, in order.
func observe(t *testing.T, topo *topology.Topology, sights ...sight) []Observation {
	t.Helper()
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var obs []Observation
	for i, s := range sights {
		node, name, _ := strings.Cut(s.at, ":")
		var ifc *topology.Interface
		if n := topo.Node(node); n != nil {
			for _, x := range n.Interfaces {
				if x.Name == name {
					ifc = x
				}
			}
		}
		if ifc == nil {
			t.Fatalf("no interface %s", s.at)
		}
		fr := s.fr
		fr.SrcMAC, fr.DstMAC = ifc.MAC, ifc.Peer.MAC
		if s.dir == capture.In {
			fr.SrcMAC, fr.DstMAC = ifc.Peer.MAC, ifc.MAC
		}
		obs = append(obs, Observation{Time: start.Add(time.Duration(i) * 10 * time.Microsecond), Iface: ifc, Dir: s.dir, Frame: fr, Length: 60})
	}
	return obs
}

// The reference lab's flow for one packet each way, as seen on a lab
// whose real decapsulates with XDP: katran's XDP_TX is seen only at the
// router, the real's decap only as the inner packet arriving.
func request(fr capture.Frame) []sight {
	return []sight{out("client:eth0", fr), in("router:eth2", fr), out("router:eth0", fr)}
}

// tunnel is the encapsulated request crossing the router towards a real.
func tunnel(routerIface, realAddr string, fr capture.Frame) []sight {
	enc := ipip(lbAddr, realAddr, fr)
	return []sight{in("router:eth0", enc), out("router:"+routerIface, enc)}
}

func reply(realNode, routerIface string, fr capture.Frame) []sight {
	return []sight{out(realNode+":eth0", fr), in("router:"+routerIface, fr), out("router:eth2", fr), in("client:eth0", fr)}
}

func cat(parts ...[]sight) []sight {
	var all []sight
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

func refFlow(topo *topology.Topology) *Flow {
	return &Flow{VIP: topo.VIPs[0], Client: topo.Node("client"), Dst: netip.MustParseAddrPort(vip), Local: netip.MustParseAddrPort(client)}
}

func referenceSYN() []sight {
	syn := tcp(client, vip, synFlag)
	enc := ipip(lbAddr, real1, syn)
	return cat(request(syn), []sight{in("router:eth0", enc), out("router:eth1", enc), in("real:eth0", syn)},
		reply("real", "eth1", tcp(vip, client, synFlag|ackFlag)))
}

type hopWant struct {
	step, from, to, seen string
}

func checkHops(t *testing.T, hops []*Hop, want []hopWant) {
	t.Helper()
	if len(hops) != len(want) {
		for _, h := range hops {
			t.Logf("%d %s %s→%s %s %s", h.N, h.Step, h.From, h.To, seen(h), h.Frame().String(false))
		}
		t.Fatalf("%d hops, want %d", len(hops), len(want))
	}
	for i, h := range hops {
		w := want[i]
		if h.N != i+1 || h.Step != w.step || h.From.String() != w.from || h.To.String() != w.to || seen(h) != w.seen {
			t.Errorf("hop %d: %d %s %s → %s %s, want %s %s → %s %s", i+1, h.N, h.Step, h.From, h.To, seen(h), w.step, w.from, w.to, w.seen)
		}
	}
}

var referenceHops = []hopWant{
	{StepRequest, "client:eth0", "router:eth2", "out+in"},
	{StepForward, "router:eth0", "katran:eth0", "out"},
	{StepEncap, "katran:eth0", "router:eth0", "in"},
	{StepForwardIPIP, "router:eth1", "real:eth0", "out+in+decapsulated"},
	{StepDSRReply, "real:eth0", "router:eth1", "out+in"},
	{StepReturn, "router:eth2", "client:eth0", "out+in"},
}

func TestAssembleReferenceFlow(t *testing.T) {
	topo := load(t, "labs/dsr.yaml")
	f := refFlow(topo)
	hops := f.Assemble(observe(t, topo, referenceSYN()...))
	checkHops(t, hops, referenceHops)
	// The tunnel hop carries both headers; its arrival, only the inner.
	enc := hops[3]
	if got := enc.Frame().IP; len(got) != 2 || got[0].Src.String() != lbAddr || got[0].Dst.String() != real1 || got[1].DstPort != 50007 {
		t.Errorf("Forward IPIP packet %s, want outer %s > %s and the inner request", enc.Frame().String(false), lbAddr, real1)
	}
	if len(enc.In.Frame.IP) != 1 {
		t.Errorf("Forward IPIP arrived as %s, want the inner packet", enc.In.Frame.String(false))
	}
	v := f.Judge(hops, Probe{Answer: "[real 10.111.222.11] ...", From: vip}, nil)
	if !v.Pass || v.Path != PathDirect || v.AnsweredBy != "real "+real1 {
		t.Errorf("verdict %+v, want PASS direct return answered by real %s", v, real1)
	}
}

// The kernel may stamp the copy entering a veth's peer before the copy
// leaving it (another CPU), and lab traffic other than the flow is
// around: neither changes the hops.
func TestAssembleOutOfOrderAndNoise(t *testing.T) {
	topo := load(t, "labs/dsr.yaml")
	sights := referenceSYN()
	sights[0], sights[1] = sights[1], sights[0]       // router:eth2 in before client:eth0 out
	noise := tcp("10.111.220.11:40001", vip, synFlag) // another connection
	sights = append(sights, out("client:eth0", noise), in("router:eth2", noise),
		out("router:eth1", udp("10.111.222.12:53", "10.111.222.11:53")))
	hops := refFlow(topo).Assemble(observe(t, topo, sights...))
	checkHops(t, hops, referenceHops)
}

// A retransmitted SYN is a second set of hops, not a second sighting of
// the first.
func TestAssembleRetransmission(t *testing.T) {
	topo := load(t, "labs/dsr.yaml")
	syn := tcp(client, vip, synFlag)
	obs := observe(t, topo, cat(request(syn), request(syn))...)
	obs[3].Time = obs[3].Time.Add(time.Second)
	obs[4].Time = obs[4].Time.Add(time.Second)
	obs[5].Time = obs[5].Time.Add(time.Second)
	hops := refFlow(topo).Assemble(obs)
	checkHops(t, hops, []hopWant{
		{StepRequest, "client:eth0", "router:eth2", "out+in"},
		{StepForward, "router:eth0", "katran:eth0", "out"},
		{StepRequest, "client:eth0", "router:eth2", "out+in"},
		{StepForward, "router:eth0", "katran:eth0", "out"},
	})
}

func TestVerdicts(t *testing.T) {
	syn := tcp(client, vip, synFlag)
	synAck := tcp(vip, client, synFlag|ackFlag)
	enc := ipip(lbAddr, real1, syn)
	unreachable := capture.Frame{IP: []capture.IPHeader{{Src: netip.MustParseAddr("10.111.220.12"),
		Dst: netip.MustParseAddr("10.111.220.11"), Proto: 1, Transport: true, ICMPType: 3, ICMPCode: 0}}}
	tests := []struct {
		name   string
		lab    string
		sights []sight
		probe  Probe
		drops  []Drop
		pass   bool
		node   string
		// substrings of the summary
		want []string
	}{
		{
			name: "VIP removed from the real's lo", lab: "labs/dsr.yaml",
			sights: cat(request(syn), []sight{in("router:eth0", enc), out("router:eth1", enc), in("real:eth0", syn)}),
			probe:  Probe{Err: "dial tcp: i/o timeout"},
			drops:  []Drop{{Node: "real", Iface: "eth0", Reason: "IP_INADDRERRORS", Function: "ip_error", Frame: syn}},
			node:   "real",
			want:   []string{"reached real eth0 decapsulated", "no reply left real", "real eth0: IP_INADDRERRORS in ip_error"},
		},
		{
			name: "decap detached", lab: "labs/dsr.yaml",
			sights: cat(request(syn), []sight{in("router:eth0", enc), out("router:eth1", enc), in("real:eth0", enc)}),
			probe:  Probe{Err: "timeout"},
			drops:  []Drop{{Node: "real", Iface: "eth0", Reason: "IP_NOPROTO", Function: "ip_protocol_deliver_rcu", Frame: enc}},
			node:   "real",
			want:   []string{"reached real eth0 still encapsulated (IPIP)", "real should have decapsulated it", "IP_NOPROTO"},
		},
		{
			name: "router has no route to the VIP", lab: "labs/dsr.yaml",
			sights: cat(request(syn)[:2], []sight{out("router:eth2", unreachable), in("client:eth0", unreachable)}),
			probe:  Probe{Err: "connect: no route to host"},
			drops:  []Drop{{Node: "router", Iface: "eth2", Reason: "IP_NOROUTE", Function: "ip_route_input_slow", Frame: syn}},
			node:   "router",
			want: []string{"reached router eth2", "router should have forwarded the request towards 192.168.10.1 (katran serves it)",
				"router sent 10.111.220.12 > 10.111.220.11 ICMP unreachable", "router eth2: IP_NOROUTE"},
		},
		{
			name: "balancer returns XDP_DROP", lab: "labs/dsr.yaml",
			sights: request(syn),
			probe:  Probe{Err: "timeout"},
			drops:  []Drop{{Node: "katran", Iface: "eth0", Reason: "NOT_SPECIFIED", Function: "veth_xdp_rcv_skb", XDP: true, Program: "xdp_verdict", Frame: syn}},
			node:   "katran",
			want: []string{"left router eth0 for katran eth0, not seen arriving", "katran should have sent it back out encapsulated",
				"katran eth0: XDP program xdp_verdict dropped it (XDP_DROP"},
		},
		{
			name: "a TC program on the real drops the request", lab: "labs/dsr.yaml",
			sights: cat(request(syn), []sight{in("router:eth0", enc), out("router:eth1", enc), in("real:eth0", syn)}),
			probe:  Probe{Err: "timeout"},
			drops:  []Drop{{Node: "real", Iface: "eth0", Reason: "TC_INGRESS", Function: "tcf_classify", TC: true, Program: "tc_drop_port (ingress)", Frame: syn}},
			node:   "real",
			want:   []string{"real eth0: TC program tc_drop_port (ingress) dropped it (TC_ACT_SHOT; kernel reason TC_INGRESS in tcf_classify)"},
		},
		{
			name: "balancer returns XDP_ABORTED", lab: "labs/dsr.yaml",
			sights: request(syn),
			probe:  Probe{Err: "timeout"},
			drops:  []Drop{{Node: "katran", Iface: "eth0", Reason: "XDP_ABORTED", Program: "xdp_balancer", XDP: true, Exception: true}},
			node:   "katran",
			want:   []string{"katran eth0: XDP program xdp_balancer returned XDP_ABORTED"},
		},
		{
			name: "nothing left the client", lab: "labs/dsr.yaml",
			probe: Probe{Err: "network is unreachable"},
			node:  "client",
			want:  []string{"nothing of the flow left client", "client should have sent 192.168.10.1:50007 to its gateway"},
		},
		{
			name: "reply crossed the balancer", lab: "labs/dsr.yaml",
			sights: cat(request(syn), []sight{in("router:eth0", enc), out("router:eth1", enc), in("real:eth0", syn)},
				[]sight{out("real:eth0", synAck), in("router:eth1", synAck), out("router:eth0", synAck),
					in("router:eth0", synAck), out("router:eth2", synAck), in("client:eth0", synAck)}),
			probe: Probe{Answer: "x", From: vip},
			want:  []string{"answered by real 10.111.222.11, but the reply crossed the balancer (hop 6, router:eth0 → katran:eth0)"},
		},
		{
			name: "answer from another address", lab: "labs/dsr.yaml",
			sights: referenceSYN(),
			probe:  Probe{Answer: "x", From: "10.111.222.11:50007"},
			want:   []string{"but from 10.111.222.11:50007, not the VIP 192.168.10.1:50007"},
		},
		{
			// The probe answered on the origin's own lo (a real probing
			// its VIP): nothing crossed the lab, which is no pass.
			name: "answered with no hop", lab: "labs/dsr.yaml",
			probe: Probe{Answer: "x", From: vip},
			node:  "client",
			want:  []string{"answered, but no packet of the flow was seen on the lab's links"},
		},
		{
			name: "answered without going through the balancer", lab: "labs/dsr.yaml",
			sights: cat(request(syn)[:2], []sight{out("router:eth2", synAck), in("client:eth0", synAck)}),
			probe:  Probe{Answer: "x", From: vip},
			node:   "client",
			want:   []string{"none of the 2 hops seen went through katran"},
		},
		{
			name: "several reals: the one that answered", lab: "labs/dsr-3reals.yaml",
			sights: cat(request(syn), tunnel("eth3", real2, syn), []sight{in("real2:eth0", syn)}, reply("real2", "eth3", synAck)),
			probe:  Probe{Answer: "x", From: vip},
			pass:   true,
			want:   []string{"answered by real2 10.111.223.11: direct return, the reply never crossed katran"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo := load(t, tt.lab)
			f := refFlow(topo)
			hops := f.Assemble(observe(t, topo, tt.sights...))
			v := f.Judge(hops, tt.probe, f.collect(tt.drops))
			if v.Pass != tt.pass || v.Node != tt.node {
				t.Errorf("pass %v at node %q, want %v at %q: %s", v.Pass, v.Node, tt.pass, tt.node, v.Summary)
			}
			for _, w := range tt.want {
				if !strings.Contains(v.Summary, w) {
					t.Errorf("summary %q\nlacks %q", v.Summary, w)
				}
			}
		})
	}
}

// natFlow is the NAT lab's flow: translated at katran both ways, the
// reply hair-pinning through it.
func natSights() []sight {
	syn := tcp(client, vip, synFlag)
	fwd := tcp(lbAddr+":61000", real1+":50007", synFlag)
	back := tcp(real1+":50007", lbAddr+":61000", synFlag|ackFlag)
	final := tcp(vip, client, synFlag|ackFlag)
	return []sight{
		out("client:eth0", syn), in("router:eth2", syn), out("router:eth0", syn), in("katran:eth0", syn),
		out("katran:eth0", fwd), in("router:eth0", fwd), out("router:eth1", fwd), in("real:eth0", fwd),
		out("real:eth0", back), in("router:eth1", back), out("router:eth0", back), in("katran:eth0", back),
		out("katran:eth0", final), in("router:eth0", final), out("router:eth2", final), in("client:eth0", final),
	}
}

func TestNATHairpin(t *testing.T) {
	topo := load(t, "labs/nat.yaml")
	f := refFlow(topo)
	hops := f.Assemble(observe(t, topo, natSights()...))
	checkHops(t, hops, []hopWant{
		{StepRequest, "client:eth0", "router:eth2", "out+in"},
		{StepForward, "router:eth0", "katran:eth0", "out+in"},
		{StepNAT, "katran:eth0", "router:eth0", "out+in"},
		{StepForward, "router:eth1", "real:eth0", "out+in"},
		{StepReply, "real:eth0", "router:eth1", "out+in"},
		{StepHairpin, "router:eth0", "katran:eth0", "out+in"},
		{StepFinalReply, "katran:eth0", "router:eth0", "out+in"},
		{StepReturn, "router:eth2", "client:eth0", "out+in"},
	})
	v := f.Judge(hops, Probe{Answer: "x", From: vip}, nil)
	if !v.Pass || v.Path != PathHairpin || v.AnsweredBy != "real "+real1 {
		t.Errorf("verdict %+v, want PASS hair-pin (NAT) answered by real", v)
	}
	// Stopped at the balancer on the way back: the reverse translation is
	// what should have followed.
	v = f.Judge(f.Assemble(observe(t, topo, natSights()[:12]...)), Probe{Err: "timeout"}, nil)
	if v.Pass || v.Node != "katran" || !strings.Contains(v.Summary, "katran should have translated the reply back") {
		t.Errorf("verdict %+v, want a failure at katran's reverse translation", v)
	}
}

func TestUDPFlow(t *testing.T) {
	topo := load(t, "labs/dsr-3reals.yaml")
	dst := "192.168.10.2:50008"
	q, a := udp(client, dst), udp(dst, client)
	f := &Flow{VIP: topo.VIPs[1], Client: topo.Node("client"), Dst: netip.MustParseAddrPort(dst), Local: netip.MustParseAddrPort(client)}
	hops := f.Assemble(observe(t, topo, cat(request(q), tunnel("eth1", real1, q), []sight{in("real1:eth0", q)}, reply("real1", "eth1", a))...))
	if len(hops) != 6 || hops[5].Step != StepReturn {
		t.Fatalf("%d hops, want the 6 steps of the reference flow", len(hops))
	}
	// A TCP segment on the same addresses is not this flow.
	if c := f.Classify(tcp(client, dst, synFlag)); c != ClassNone {
		t.Errorf("TCP segment classified %s in a UDP flow", c)
	}
	if v := f.Judge(hops, Probe{Answer: "x", From: dst}, nil); !v.Pass || v.AnsweredBy != "real1 "+real1 {
		t.Errorf("verdict %+v", v)
	}
}

func TestCollectDrops(t *testing.T) {
	topo := load(t, "labs/dsr.yaml")
	f := refFlow(topo)
	syn := tcp(client, vip, synFlag)
	other := tcp("10.111.220.11:1", "10.111.220.12:22", synFlag)
	got := f.collect([]Drop{
		{Node: "real", Reason: "IP_INADDRERRORS", Frame: syn},
		{Node: "router", Reason: "NO_SOCKET", Frame: other},                    // not the flow
		{Node: "real", Reason: "IP_INADDRERRORS", Frame: syn},                  // the retransmission
		{Node: "katran", Reason: "XDP_ABORTED", Program: "p", Exception: true}, // no packet, kept
		{Node: "katran", Reason: "NOT_SPECIFIED", XDP: true, Frame: syn},       // the aborted packet, freed
	})
	if len(got) != 2 || got[0].Count != 2 || got[0].Class != ClassRequest || got[1].Reason != "XDP_ABORTED" {
		t.Errorf("collected %+v, want the flow's drop counted twice and the XDP exception", got)
	}
}

func TestNames(t *testing.T) {
	names := map[uint32]string{2: "NOT_SPECIFIED", 5: "NO_SOCKET"}
	for _, c := range []struct {
		reason uint32
		want   string
	}{{5, "NO_SOCKET"}, {7, "reason 7"}, {3<<16 | 4, "subsystem 3 reason 4"}} {
		if got := ReasonName(names, c.reason); got != c.want {
			t.Errorf("ReasonName(%#x) = %q, want %q", c.reason, got, c.want)
		}
	}
	if XDPAction(0) != "XDP_ABORTED" || XDPAction(1) != "XDP_DROP" || XDPAction(9) != "XDP action 9" {
		t.Error("XDPAction names wrong")
	}
	syms, err := ReadSymbols(strings.NewReader("ffffffff81000000 T _stext\n" +
		"ffffffff81000100 t veth_xdp_rcv_skb\t[veth]\nffffffff81000080 D some_data\nffffffff81000200 T ip_error\n"))
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[uint64]string{0xffffffff81000150: "veth_xdp_rcv_skb", 0xffffffff81000200: "ip_error",
		0xffffffff81000090: "_stext", 0x1000: ""} {
		if got := syms.Name(addr); got != want {
			t.Errorf("Name(%#x) = %q, want %q", addr, got, want)
		}
	}
	if !xdpDrop("NOT_SPECIFIED", "veth_xdp_rcv_skb") || !xdpDrop("XDP", "do_xdp_generic") || xdpDrop("NO_SOCKET", "udp_rcv") {
		t.Error("xdpDrop misjudges")
	}
}

func TestSelect(t *testing.T) {
	topo := load(t, "labs/dsr-3reals.yaml")
	for _, c := range []struct {
		target, from, proto string
		wantVIP, wantClient string
		wantPort            uint16
		err                 string
	}{
		{wantVIP: "192.168.10.1:50007/tcp", wantClient: "client"},
		{proto: "udp", wantVIP: "192.168.10.2:50008/udp", wantClient: "client"},
		{target: "192.168.10.2", wantVIP: "192.168.10.2:50008/udp", wantClient: "client"},
		// real3 is no real of the UDP VIP: its probe crosses the lab.
		{target: "192.168.10.2:50008", from: "real3", wantVIP: "192.168.10.2:50008/udp", wantClient: "real3", wantPort: 50008},
		// A real holds its VIPs on lo, and the balancer gets its own
		// answers back: neither can test the path.
		{target: "192.168.10.2:50008", from: "real1", err: "real1 is a real of VIP 192.168.10.2:50008/udp and holds the VIP on its lo"},
		{from: "real3", err: "real3 is a real of VIP 192.168.10.1:50007/tcp"},
		{from: "katran", err: "katran is the balancer of VIP 192.168.10.1:50007/tcp"},
		{target: "192.168.10.1:0", err: "port 0 is no port to probe"},
		{target: "[fd00::1]:0", err: "port 0 is no port to probe"},
		{target: "192.168.10.1", proto: "udp", err: `VIP 192.168.10.1:50007/tcp is TCP, not UDP: lab "dsr3" has no UDP VIP at 192.168.10.1`},
		{target: "192.168.10.2:50008", proto: "tcp", err: "VIP 192.168.10.2:50008/udp is UDP, not TCP"},
		{target: "192.168.10.9", err: "it has: 192.168.10.1:50007/tcp, 192.168.10.2:50008/udp"},
		{target: "nonsense", err: "want VIP or VIP:PORT"},
		{proto: "sctp", err: "want tcp or udp"},
		{from: "nobody", err: `no node "nobody"`},
	} {
		opt, err := Select(topo, c.target, c.from, c.proto)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Select(%q, %q, %q) error %v, want %q", c.target, c.from, c.proto, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Select(%q, %q, %q): %v", c.target, c.from, c.proto, err)
			continue
		}
		if opt.VIP.String() != c.wantVIP || opt.Client.Name != c.wantClient || opt.Port != c.wantPort {
			t.Errorf("Select(%q, %q, %q) = %s from %s port %d", c.target, c.from, c.proto, opt.VIP, opt.Client.Name, opt.Port)
		}
	}
}

// The three renderings of the reference flow, checked against files in
// testdata/ (go test -update rewrites them).
func TestRender(t *testing.T) {
	topo := load(t, "labs/dsr.yaml")
	f := refFlow(topo)
	hops := f.Assemble(observe(t, topo, referenceSYN()...))
	r := &Result{Flow: f, Hops: hops, Probe: Probe{Answer: "[real 10.111.222.11] ('10.111.220.11', 40000): vvv\n", From: vip}}
	r.Verdict = f.Judge(hops, r.Probe, nil)
	for _, c := range []struct {
		file   string
		render func(*bytes.Buffer) error
	}{
		{"reference.txt", func(b *bytes.Buffer) error { return r.Table(b, false) }},
		{"reference-v.txt", func(b *bytes.Buffer) error { return r.Table(b, true) }},
		{"reference.mmd", func(b *bytes.Buffer) error { return r.Mermaid(b) }},
		{"reference.json", func(b *bytes.Buffer) error { return r.JSON(b) }},
	} {
		var b bytes.Buffer
		if err := c.render(&b); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", c.file)
		if *update {
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if b.String() != string(want) {
			t.Errorf("%s differs:\n%s", c.file, b.String())
		}
	}
	var decoded struct {
		Hops []struct {
			Step string `json:"step"`
			IP   []struct {
				Src string `json:"src"`
			} `json:"ip"`
			Arrived []json.RawMessage `json:"arrived"`
		} `json:"hops"`
		Verdict Verdict `json:"verdict"`
	}
	var b bytes.Buffer
	r.JSON(&b)
	if err := json.Unmarshal(b.Bytes(), &decoded); err != nil {
		t.Fatal(err)
	}
	if len(decoded.Hops) != 6 || decoded.Hops[3].Step != StepForwardIPIP || len(decoded.Hops[3].IP) != 2 ||
		decoded.Hops[3].IP[0].Src != lbAddr || len(decoded.Hops[3].Arrived) != 1 || !decoded.Verdict.Pass {
		t.Errorf("JSON does not carry the tunnel hop's headers or the verdict: %s", b.String())
	}
}

// With the VIP gone from its lo, a real that forwards sends the request
// back to the router, which sends it to katran again: the trace shows one
// round and says how many followed.
func TestRoutingLoop(t *testing.T) {
	topo := load(t, "labs/dsr.yaml")
	f := refFlow(topo)
	withTTL := func(fr capture.Frame, ttl uint8) capture.Frame {
		fr.IP = slices.Clone(fr.IP)
		fr.IP[len(fr.IP)-1].TTL = ttl
		return fr
	}
	syn := tcp(client, vip, synFlag)
	sights := request(withTTL(syn, 63))
	for ttl := uint8(63); ttl > 60; ttl-- {
		s := withTTL(syn, ttl)
		enc := ipip(lbAddr, real1, s)
		back := withTTL(syn, ttl-1)
		sights = append(sights, in("router:eth0", enc), out("router:eth1", enc), in("real:eth0", s),
			out("real:eth0", back), in("router:eth1", back), out("router:eth0", withTTL(syn, ttl-2)))
	}
	hops := f.Assemble(observe(t, topo, sights...))
	l, ok := FindLoop(hops)
	if !ok || l.Start != 1 || l.Len != 4 || l.Count != 3 || l.path(hops) != "router → katran → router → real → router" {
		t.Fatalf("loop %+v (%v), want 3 rounds of router → katran → router → real from hop 2", l, ok)
	}
	v := f.Judge(hops, Probe{Err: "no route to host"}, nil, "real:eth1 no carrier")
	if !strings.Contains(v.Summary, "routing loop: router → katran → router → real → router, 3 times") {
		t.Errorf("summary %q does not name the loop", v.Summary)
	}
	if !strings.Contains(v.Summary, "; not up: real:eth1 no carrier;") {
		t.Errorf("summary %q does not name the interface not up", v.Summary)
	}
	var b bytes.Buffer
	(&Result{Flow: f, Hops: hops, Verdict: v}).Table(&b, false)
	if !strings.Contains(b.String(), "6-13") || !strings.Contains(b.String(), "router → katran → router → real → router: the same 4 hops 2 more times") || strings.Contains(b.String(), "\n7 ") {
		t.Errorf("table does not fold the loop:\n%s", b.String())
	}
	// A retransmission keeps its TTL: not a loop.
	if _, ok := FindLoop(f.Assemble(observe(t, topo, cat(request(syn), request(syn))...))); ok {
		t.Error("a retransmission taken for a loop")
	}
}
