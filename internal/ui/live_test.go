//go:build linux

package ui

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/capture"
	"github.com/dsrlab/dsrlab/internal/graph"
	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/labtest"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// localCapture is `dsrlab capture -w -` for the lab tests' nodes, all on
// this host.
func localCapture(ctx context.Context, rts runtime.Set, topo *topology.Topology, node, iface string, count int, w io.Writer) error {
	ns, err := lab.NodeNamespace(ctx, rts, topo, node)
	if err != nil {
		return err
	}
	c, err := capture.Open([]capture.Source{{Node: node, Iface: iface, NS: ns}}, "")
	ns.Close()
	if err != nil {
		return err
	}
	defer c.Close()
	pw, err := capture.NewWriter(w, c.Interfaces())
	if err != nil {
		return err
	}
	return c.Run(ctx, count, pw.WritePacket)
}

// stream reads a page's event stream.
type stream struct {
	t    *testing.T
	sc   *bufio.Scanner
	logs []string
}

func openStream(t *testing.T, ctx context.Context, url string) *stream {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return &stream{t: t, sc: sc}
}

// next returns the next event of that name; log events met on the way are
// kept.
func (s *stream) next(name string) []byte {
	s.t.Helper()
	var ev string
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			ev = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data := []byte(strings.TrimPrefix(line, "data: "))
			if ev == "log" {
				var e LogEntry
				json.Unmarshal(data, &e)
				s.logs = append(s.logs, e.Text)
			}
			if ev == name {
				return data
			}
		}
	}
	s.t.Fatalf("event stream ended waiting for %q: %v", name, s.sc.Err())
	return nil
}

// state waits for a reading that ok accepts.
func (s *stream) state(what string, ok func(*Snapshot) bool) *Snapshot {
	s.t.Helper()
	for {
		var snap Snapshot
		if err := json.Unmarshal(s.next("state"), &snap); err != nil {
			s.t.Fatal(err)
		}
		if ok(&snap) {
			return &snap
		}
		if s.t.Context().Err() != nil {
			s.t.Fatalf("no reading where %s", what)
		}
	}
}

func (s *stream) logged(part string) bool {
	for _, l := range s.logs {
		if strings.Contains(l, part) {
			return true
		}
	}
	return false
}

func link(s *Snapshot, a, b string) LinkView {
	for _, l := range s.Links {
		if l.A == a && l.B == b {
			return l
		}
	}
	return LinkView{}
}

func post(t *testing.T, url, path, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", url+path, strings.NewReader(body))
	req.Header.Set(TokenHeader, testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestLivePageOfAFakeLab runs the server against the reference lab on the
// fake runtime: real veths, XDP programs and echo service, no engine. The
// page's stream follows the lab up, through traffic, a trace, a capture,
// down and up again.
func TestLivePageOfAFakeLab(t *testing.T) {
	rt := labtest.Runtime(t)
	rts := runtime.Set{topology.LocalHost: rt}
	topo, err := topology.Load("../../labs/dsr.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if _, err := lab.Up(ctx, rts, topo, labtest.Quiet{}); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Lab: topo.Name, Engines: rts, Listen: "127.0.0.1:0", Token: testToken, Interval: 100 * time.Millisecond, Capture: localCapture})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	// The page goes before the server: Close waits for its stream.
	ctx, closePage := context.WithCancel(ctx)
	defer closePage()
	go srv.Watch(ctx)

	resp, err := http.Get(hs.URL + "/api/scene")
	if err != nil {
		t.Fatal(err)
	}
	var sc graph.Scene
	err = json.NewDecoder(resp.Body).Decode(&sc)
	resp.Body.Close()
	if err != nil || len(sc.Nodes) != 4 || len(sc.Links) != 3 || len(sc.Flows) != 6 {
		t.Fatalf("scene: %v, %d nodes, %d links, %d flows", err, len(sc.Nodes), len(sc.Links), len(sc.Flows))
	}

	es := openStream(t, ctx, hs.URL)
	es.next("scene")
	first := es.state("the lab is up with its balancer read", func(s *Snapshot) bool {
		return s.Up && s.Status == "up" && len(s.Balancers) == 1 && section(s.Balancers[0], "VIPs and reals") != nil &&
			section(s.Balancers[0], "routes to its VIPs") != nil
	})
	programs := map[string]string{}
	for _, n := range first.Nodes {
		for _, p := range n.Programs {
			programs[n.Name] += p.Name + " " + p.Mode + " " + p.Interface + ";"
		}
	}
	if !strings.Contains(programs["katran"], "eth0") || programs["real"] == "" {
		t.Errorf("programs %v: want the balancer on katran eth0 and decap on real", programs)
	}
	vips := section(first.Balancers[0], "VIPs and reals")
	if len(vips.Rows) != 1 || vips.Rows[0][0] != "192.168.10.1:50007/tcp" || !strings.Contains(vips.Rows[0][1], "10.111.222.11") || vips.Rows[0][2] != "1" {
		t.Errorf("balancer section %+v", vips)
	}
	if routes := section(first.Balancers[0], "routes to its VIPs"); routes == nil || len(routes.Rows) != 1 ||
		strings.Join(slices.Delete(slices.Clone(routes.Rows[0]), 2, 3), "|") != "router|192.168.10.1/32|10.111.221.11 ok|1|–" {
		t.Errorf("routes section %+v: want the router's one route, via katran", routes)
	}

	// Traffic through the VIP: the page's totals show the DSR asymmetry
	// (requests cross katran's link once each way, replies leave the real
	// and never cross katran), and its rates were non-zero on the way.
	const payload = 256 << 10
	realOut := func(s *Snapshot) Rate { return link(s, "router:eth1", "real:eth0").BtoA }
	katranOut := func(s *Snapshot) Rate { return link(s, "router:eth0", "katran:eth0").BtoA }
	base := es.state("a reading after the first", func(*Snapshot) bool { return true })
	checks, err := lab.Verify(ctx, rts, topo)
	if err != nil || len(checks) != 1 || !checks[0].Pass {
		t.Fatalf("verify: %v %+v", err, checks)
	}
	done := time.Now()
	var maxBPS, maxRealPPS float64
	last := es.state("the transfer is counted", func(s *Snapshot) bool {
		maxBPS = max(maxBPS, realOut(s).BPS)
		if len(s.Balancers) == 1 {
			var pps float64
			if v := section(s.Balancers[0], "VIPs and reals"); v != nil && len(v.Rows) > 0 {
				json.Unmarshal([]byte(v.Rows[0][3]), &pps)
			}
			maxRealPPS = max(maxRealPPS, pps)
		}
		// A reading begun after verify ended has all of it, at every
		// node (one reading reads the nodes one after the other).
		return s.Time.After(done) && maxRealPPS > 0
	})
	if got := realOut(last).Bytes - realOut(base).Bytes; got < payload {
		t.Errorf("the real sent %d bytes, want the %d-byte answer", got, payload)
	}
	if maxBPS == 0 {
		t.Error("the real's return direction never showed a rate")
	}
	katranBytes := katranOut(last).Bytes - katranOut(base).Bytes
	if katranBytes < payload || katranBytes > payload*3/2 {
		t.Errorf("katran sent %d bytes for a %d-byte exchange: want the requests once, not the replies", katranBytes, payload)
	}

	// A trace from the page.
	resp = post(t, hs.URL, "/api/trace", `{}`)
	var tr struct {
		Hops    []struct{ From, To, Step string }
		Verdict struct {
			Pass    bool
			Summary string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != 200 {
		t.Fatalf("trace: %d %v", resp.StatusCode, err)
	}
	if !tr.Verdict.Pass || len(tr.Hops) < 6 {
		t.Errorf("trace: pass %v, %d hops: %s", tr.Verdict.Pass, len(tr.Hops), tr.Verdict.Summary)
	}
	es.state("the trace is logged", func(*Snapshot) bool { return es.logged("PASS") })

	// A capture from the page, while the client talks to the VIP.
	stop := make(chan struct{})
	go func() {
		ns, err := lab.NodeNamespace(ctx, rts, topo, "client")
		if err != nil {
			return
		}
		defer ns.Close()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				lab.Probe(ctx, ns, netip.MustParseAddrPort("192.168.10.1:50007"), topology.ProtoTCP, 8)
			}
		}
	}()
	// Enough packets that the neighbour resolution the first probe may
	// start (ARP) cannot fill the capture alone.
	resp = post(t, hs.URL, "/api/capture", `{"node":"client","iface":"eth0","count":12,"seconds":60}`)
	pcap, _ := io.ReadAll(resp.Body)
	close(stop)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), "dsr-client-eth0.pcap") {
		t.Fatalf("capture: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Disposition"), pcap)
	}
	if len(pcap) < 24 || binary.LittleEndian.Uint32(pcap) != 0xa1b2c3d4 {
		t.Fatalf("capture: %d bytes, not a pcap file", len(pcap))
	}
	records := 0
	for rest := pcap[24:]; len(rest) >= 16; records++ {
		n := 16 + int(binary.LittleEndian.Uint32(rest[8:]))
		if n > len(rest) {
			t.Fatalf("capture: packet %d cut short", records+1)
		}
		rest = rest[n:]
	}
	if records != 12 || !bytes.Contains(pcap, []byte{192, 168, 10, 1}) {
		t.Errorf("capture: %d packets, want 12 with the flow to the VIP among them", records)
	}

	// Down: the page says so; up again: the page follows.
	if _, err := lab.Down(ctx, rts, topo.Name, labtest.Quiet{}); err != nil {
		t.Fatal(err)
	}
	down := es.state("the lab is down", func(s *Snapshot) bool { return !s.Up })
	if !strings.HasPrefix(down.Status, "down") || !es.logged("down") {
		t.Errorf("down: status %q, log %q", down.Status, es.logs)
	}
	if _, err := lab.Up(ctx, rts, topo, labtest.Quiet{}); err != nil {
		t.Fatal(err)
	}
	es.state("the lab is up again", func(s *Snapshot) bool { return s.Up && s.Status == "up" })
}

// section is a balancer's section whose title starts so.
func section(b BalancerView, title string) *Section {
	for i := range b.Sections {
		if strings.HasPrefix(b.Sections[i].Title, title) {
			return &b.Sections[i]
		}
	}
	return nil
}

// TestTierPanelsFollowAFailedKatran: in a tier, each katran's panel shows
// it as one of the router's ECMP next hops; a katran that stops shows as
// a next hop no longer usable, and the others carry on.
func TestTierPanelsFollowAFailedKatran(t *testing.T) {
	rt := labtest.Runtime(t)
	rts := runtime.Set{topology.LocalHost: rt}
	data, err := os.ReadFile("../../labs/dsr-tier.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The fake runtime runs no BGP speakers: up writes the router's
	// routes itself.
	text := strings.Replace(string(data), "router:  {kind: router}", "router:  {kind: router, routing: static}", 1)
	topo, err := topology.Parse([]byte(text), "tier.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if _, err := lab.Up(ctx, rts, topo, labtest.Quiet{}); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Lab: topo.Name, Engines: rts, Listen: "127.0.0.1:0", Token: testToken, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	ctx, closePage := context.WithCancel(ctx)
	defer closePage()
	go srv.Watch(ctx)
	es := openStream(t, ctx, hs.URL)

	nextHop := func(s *Snapshot, katran string) []string {
		for _, b := range s.Balancers {
			if r := section(b, "routes to its VIPs"); b.Node == katran && r != nil && len(r.Rows) == 1 {
				return r.Rows[0]
			}
		}
		return nil
	}
	es.state("every katran a next hop of three", func(s *Snapshot) bool {
		for _, k := range []string{"katran1", "katran2", "katran3"} {
			row := nextHop(s, k)
			if row == nil || !strings.HasSuffix(row[3], " ok") || row[4] != "3" || !strings.Contains(row[2], "nexthop group") {
				return false
			}
		}
		return true
	})
	if err := rt.Stop(ctx, topo.Node("katran2").ContainerName, false); err != nil {
		t.Fatal(err)
	}
	// One reading reads the containers, then the routes: the route may
	// go before the container shows as stopped.
	last := es.state("katran2 stopped and no longer a usable next hop", func(s *Snapshot) bool {
		row := nextHop(s, "katran2")
		return row != nil && !strings.HasSuffix(row[3], " ok") && strings.HasPrefix(s.Status, "degraded")
	})
	t.Logf("katran2 stopped: %v", nextHop(last, "katran2"))
	for _, k := range []string{"katran1", "katran3"} {
		if row := nextHop(last, k); row == nil || !strings.HasSuffix(row[3], " ok") {
			t.Errorf("%s after katran2 stopped: %v", k, row)
		}
	}
	if !es.logged("node katran2: running → exited") {
		t.Errorf("log %q", es.logs)
	}
}

func TestRatesPerSecond(t *testing.T) {
	at := time.Unix(100, 0)
	for _, tc := range []struct {
		prev, cur counterSample
		pps, bps  float64
	}{
		{counterSample{at: at, packets: 10, bytes: 1000}, counterSample{at: at.Add(2 * time.Second), packets: 30, bytes: 3000}, 10, 8000},
		// A veth made anew by up counts from zero.
		{counterSample{at: at, packets: 10, bytes: 1000}, counterSample{at: at.Add(time.Second), packets: 2, bytes: 100}, 0, 0},
		{counterSample{at: at, packets: 10}, counterSample{at: at, packets: 20}, 0, 0},
	} {
		if pps, bps := perSecond(tc.prev, tc.cur); pps != tc.pps || bps != tc.bps {
			t.Errorf("%+v → %+v: %v pkt/s %v bit/s, want %v %v", tc.prev, tc.cur, pps, bps, tc.pps, tc.bps)
		}
	}
}
