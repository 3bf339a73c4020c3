package trace

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/capture"
	"github.com/dsrlab/dsrlab/internal/capture/filter"
	"github.com/dsrlab/dsrlab/internal/capture/packettest"
	"github.com/dsrlab/dsrlab/topology"
)

// realElsewhere is the reference lab with its real on host h2, behind a
// VXLAN link to the router.
func realElsewhere(t *testing.T) *topology.Topology {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "labs", "dsr.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "real:   {kind: real}", "real:   {kind: real, host: h2}", 1)
	text = strings.Replace(text, "prefix: \"\"\n", "prefix: \"\"\nhosts:\n  local: {underlay: 172.31.255.1}\n"+
		"  h2: {docker: \"unix:///run/docker-h2.sock\", underlay: 172.31.255.2}\n", 1)
	topo, err := topology.Parse([]byte(text), "lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if l := topo.Node("real").Interfaces[0]; l.Peer.Node.Host == l.Node.Host {
		t.Fatal("the real's link does not cross hosts")
	}
	return topo
}

// frameBytes is the frame as a packet socket reads it.
func frameBytes(t *testing.T, fr capture.Frame) []byte {
	t.Helper()
	var b []byte
	for i := len(fr.IP) - 1; i >= 0; i-- {
		h := fr.IP[i]
		if h.Transport {
			if h.Proto != packettest.TCP {
				t.Fatalf("frameBytes makes TCP only, not proto %d", h.Proto)
			}
			b = packettest.TCPHeader{SrcPort: h.SrcPort, DstPort: h.DstPort, Flags: h.TCPFlags}.Marshal(nil)
		}
		b = packettest.IPv4Header{Src: h.Src, Dst: h.Dst, Proto: h.Proto, TTL: h.TTL}.Marshal(b)
	}
	return packettest.Ethernet(b)
}

// reportsOf splits observations into what each host's watch reports,
// with the clock of every host but the local one off by skew, in host
// order as a trace gets them ("h2" before "local").
func reportsOf(t *testing.T, obs []Observation, skew time.Duration) []*hostReport {
	t.Helper()
	byHost := map[string]*hostReport{}
	var reports []*hostReport
	for _, o := range obs {
		h := hostOf(&o)
		rep := byHost[h]
		if rep == nil {
			rep = &hostReport{Host: h}
			byHost[h] = rep
			reports = append(reports, rep)
		}
		at := o.Time
		if h != topology.LocalHost {
			at = at.Add(skew)
		}
		rep.Packets = append(rep.Packets, sighting{Time: at, Node: o.Iface.Node.Name, Iface: o.Iface.Name, Dir: o.Dir,
			Length: o.Length, Link: filter.Ethernet, Data: frameBytes(t, o.Frame)})
	}
	slices.SortFunc(reports, func(a, b *hostReport) int { return strings.Compare(a.Host, b.Host) })
	return reports
}

// The real's host runs ahead or behind by more than the pairing window:
// its sightings still pair with the router's across the VXLAN link, and
// the hops read as on one host, in the flow's order.
func TestMergeSkewedClocks(t *testing.T) {
	topo := realElsewhere(t)
	f := refFlow(topo)
	for _, skew := range []time.Duration{0, 3 * time.Second, -3 * time.Second, 40 * time.Millisecond} {
		t.Run(skew.String(), func(t *testing.T) {
			want := observe(t, topo, referenceSYN()...)
			obs, drops, _, off := merge(topo, reportsOf(t, want, skew))
			if len(obs) != len(want) || len(drops) != 0 || off != "" {
				t.Fatalf("%d observations, drops %v, %q: want %d, none, none", len(obs), drops, off, len(want))
			}
			hops := f.Assemble(obs)
			checkHops(t, hops, referenceHops)
			// Crossings are 10µs each way: the offset is exact.
			at := map[string]time.Time{}
			for _, o := range want {
				at[o.Iface.String()+" "+o.Dir.String()] = o.Time
			}
			for _, o := range obs {
				if w := at[o.Iface.String()+" "+o.Dir.String()]; !o.Time.Equal(w) {
					t.Errorf("%s %s at %v, want %v", o.Iface, o.Dir, o.Time, w)
				}
			}
		})
	}
}

// A request that reached the real and got no reply crosses one way only:
// the real's clock, ahead or behind, is moved so that the request arrives
// as it left; the two sightings, now of one time, still make one hop.
func TestMergeOneWayCrossing(t *testing.T) {
	topo := realElsewhere(t)
	f := refFlow(topo)
	syn := tcp(client, vip, synFlag)
	sights := cat(request(syn), tunnel("eth1", real1, syn), []sight{in("real:eth0", syn)})
	for _, skew := range []time.Duration{-2 * time.Second, 2 * time.Second} {
		obs, _, _, _ := merge(topo, reportsOf(t, observe(t, topo, sights...), skew))
		hops := f.Assemble(obs)
		checkHops(t, hops, []hopWant{
			{StepRequest, "client:eth0", "router:eth2", "out+in"},
			{StepForward, "router:eth0", "katran:eth0", "out"},
			{StepEncap, "katran:eth0", "router:eth0", "in"},
			{StepForwardIPIP, "router:eth1", "real:eth0", "out+in+decapsulated"},
		})
		if h := hops[3]; !h.In.Time.Equal(h.Out.Time) {
			t.Errorf("skew %v: arrived %v after it left, want at once", skew, h.In.Time.Sub(h.Out.Time))
		}
	}
}

// A first copy lost between the hosts and sent again a second later: the
// copy that arrived is the one sent again, not the lost one, or the real's
// clock would be put a second off.
func TestMergeLostFirstCopy(t *testing.T) {
	topo := realElsewhere(t)
	syn := tcp(client, vip, synFlag)
	sights := cat(request(syn), tunnel("eth1", real1, syn), []sight{in("real:eth0", syn)})
	for _, skew := range []time.Duration{-2 * time.Second, 2 * time.Second} {
		obs := observe(t, topo, sights...)
		lost := obs[len(obs)-2] // leaving router:eth1
		lost.Time = lost.Time.Add(-time.Second)
		obs = append(obs, lost)
		merged, _, _, _ := merge(topo, reportsOf(t, obs, skew))
		var sent, got time.Time
		for _, o := range merged {
			switch o.Iface.String() + " " + o.Dir.String() {
			case "router:eth1 out":
				if o.Time.After(sent) {
					sent = o.Time // the copy sent again
				}
			case "real:eth0 in":
				got = o.Time
			}
		}
		if !got.Equal(sent) {
			t.Errorf("skew %v: the copy that arrived is put %v after the one sent again, want at once", skew, got.Sub(sent))
		}
	}
}

func TestClockOffsets(t *testing.T) {
	us := time.Microsecond
	for _, c := range []struct {
		name  string
		least map[hostPair]time.Duration
		want  map[string]time.Duration
	}{
		{"both ways, asymmetric", map[hostPair]time.Duration{{"local", "h2"}: 1030 * us, {"h2", "local"}: -970 * us},
			map[string]time.Duration{"local": 0, "h2": 1000 * us}},
		{"one way, ahead", map[hostPair]time.Duration{{"local", "h2"}: 5 * time.Second},
			map[string]time.Duration{"local": 0, "h2": 5 * time.Second}},
		{"one way back, behind", map[hostPair]time.Duration{{"h2", "local"}: 5 * time.Second},
			map[string]time.Duration{"local": 0, "h2": -5 * time.Second}},
		{"chain", map[hostPair]time.Duration{{"local", "h2"}: 10 * us, {"h2", "local"}: 10 * us,
			{"h2", "h3"}: 7 * time.Millisecond, {"h3", "h2"}: -7 * time.Millisecond},
			map[string]time.Duration{"local": 0, "h2": 0, "h3": 7 * time.Millisecond}},
		{"no local node", map[hostPair]time.Duration{{"h3", "h2"}: 2 * time.Second},
			map[string]time.Duration{"local": 0, "h2": 0, "h3": -2 * time.Second}},
	} {
		got := clockOffsets(c.least)
		for h, w := range c.want {
			if got[h] != w {
				t.Errorf("%s: host %s off by %v, want %v", c.name, h, got[h], w)
			}
		}
	}
}

// What a watch on another host reports arrives through JSON: the frames
// and drops decode there as they would have here, and the trace's own
// JSON output of a drop is what it was.
func TestReportJSONRoundTrip(t *testing.T) {
	topo := realElsewhere(t)
	f := refFlow(topo)
	syn := tcp(client, vip, synFlag)
	reports := reportsOf(t, observe(t, topo, referenceSYN()...), time.Second)
	head := frameBytes(t, syn)[14:]
	reports[0].Drops = []seenDrop{
		{Drop: Drop{Node: "real", Iface: "eth0", Reason: "IP_INADDRERRORS", Function: "ip_route_input_slow"}, Head: head},
		{Drop: Drop{Node: "real", Iface: "eth0", Reason: "XDP_ABORTED", Program: "decap", XDP: true, Exception: true}},
	}
	reports[0].DropsOff = "no BTF"
	reports[0].NotUp = []string{"real:eth0 no carrier"}
	var sent []*hostReport
	for _, rep := range reports {
		data, err := json.Marshal(watchReply{Seen: rep})
		if err != nil {
			t.Fatal(err)
		}
		var back watchReply
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, back.Seen)
	}
	wantObs, wantDrops, wantNotUp, wantOff := merge(topo, reports)
	obs, drops, notUp, off := merge(topo, sent)
	if len(obs) != len(wantObs) {
		t.Fatalf("%d observations through JSON, want %d", len(obs), len(wantObs))
	}
	for i := range obs {
		a, b := obs[i], wantObs[i]
		if !a.Time.Equal(b.Time) || a.Iface != b.Iface || a.Dir != b.Dir || a.Length != b.Length ||
			a.Frame.String(true) != b.Frame.String(true) {
			t.Errorf("observation %d through JSON %+v, want %+v", i, a, b)
		}
	}
	if off != wantOff || off != "host h2: no BTF" {
		t.Errorf("drops unwatched %q, want %q", off, "host h2: no BTF")
	}
	if !slices.Equal(notUp, wantNotUp) || !slices.Equal(notUp, []string{"real:eth0 no carrier"}) {
		t.Errorf("interfaces not up through JSON %q, want %q", notUp, wantNotUp)
	}
	got := f.collect(drops)
	if len(got) != 2 || got[0].Packet != syn.String(false) || got[0].Class != ClassRequest || got[0].Function != "ip_route_input_slow" ||
		!got[1].Exception || got[1].Program != "decap" {
		t.Errorf("drops through JSON %+v, want the request's and the exception", got)
	}
	if len(wantDrops) != len(drops) {
		t.Errorf("%d drops through JSON, want %d", len(drops), len(wantDrops))
	}
	var out bytes.Buffer
	if err := json.NewEncoder(&out).Encode(got[0]); err != nil {
		t.Fatal(err)
	}
	const want = `{"node":"real","iface":"eth0","reason":"IP_INADDRERRORS","function":"ip_route_input_slow","xdp":false,` +
		`"packet":"10.111.220.11.40000 \u003e 192.168.10.1.50007 TCP S","class":"request","count":1}` + "\n"
	if out.String() != want {
		t.Errorf("a drop in trace's JSON output:\n%s\nwant\n%s", out.String(), want)
	}
}

// A watch keeps only the flow's part of what it saw.
func TestKeepTheFlow(t *testing.T) {
	topo := realElsewhere(t)
	f := refFlow(topo)
	other := tcp("10.111.220.11:1", "10.111.220.12:22", synFlag)
	obs := observe(t, topo, cat(referenceSYN(), []sight{out("client:eth0", other)})...)
	rep := reportsOf(t, obs, 0)[1] // local
	rep.Drops = []seenDrop{
		{Drop: Drop{Node: "router", Reason: "NO_SOCKET"}, Head: frameBytes(t, other)[14:]},
		{Drop: Drop{Node: "katran", Reason: "XDP_ABORTED", Exception: true}},
	}
	local := len(rep.Packets)
	f.keep(rep)
	if len(rep.Packets) != local-1 || len(rep.Drops) != 1 || !rep.Drops[0].Exception {
		t.Errorf("kept %d of %d packets and drops %+v: want all but the other connection's, and the exception",
			len(rep.Packets), local, rep.Drops)
	}
}

func TestFlowRef(t *testing.T) {
	topo := realElsewhere(t)
	f := refFlow(topo)
	back, err := f.ref().flow(topo)
	if err != nil || back.VIP != f.VIP || back.Client != f.Client || back.Dst != f.Dst || back.Local != f.Local {
		t.Errorf("flow through its reference %+v, %v: want %+v", back, err, f)
	}
	if _, err := (flowRef{VIP: "192.168.10.9:1/tcp", Client: "client"}).flow(topo); err == nil {
		t.Error("a VIP the lab does not have: no error")
	}
}
