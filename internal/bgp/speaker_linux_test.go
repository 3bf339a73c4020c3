package bgp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/bpf"
	"github.com/dsrlab/dsrlab/internal/netconf"
)

// A speaker is a process in its node's network namespace, as in a lab: GoBGP
// opens its sockets from goroutines on any thread, so speakers in different
// namespaces cannot share one process. The tests run each speaker as this
// test binary, started from a thread inside the namespace (the child is
// born there) with its config in speakerEnv.
const speakerEnv = "DSRLAB_BGP_TEST_SPEAKER"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(speakerEnv); cfg != "" {
		os.Exit(runTestSpeaker(cfg))
	}
	os.Exit(m.Run())
}

// runTestSpeaker is `dsrlab bgp` with a router's installer that prints its
// calls, in order with the log lines, for the test to read.
func runTestSpeaker(data string) int {
	cfg, err := ParseConfig([]byte(data))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	out := &lockedWriter{w: os.Stdout}
	inst := printInstaller{w: out}
	if cfg.Role == RoleLearn {
		ns, err := netconf.Current(cfg.Node)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer ns.Close()
		inst.kernel = KernelRoutes{NS: ns}
	}
	if err := Run(ctx, cfg, inst, out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type lockedWriter struct {
	mu sync.Mutex
	w  *os.File
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// printInstaller prints each call, then has the kernel do it.
type printInstaller struct {
	w      *lockedWriter
	kernel KernelRoutes
}

func (p printInstaller) Set(dst netip.Prefix, vias []netip.Addr) error {
	fmt.Fprintf(p.w, "installer: set %s via %s\n", dst, addrList(vias))
	return p.kernel.Set(dst, vias)
}

func (p printInstaller) Delete(dst netip.Prefix) error {
	fmt.Fprintf(p.w, "installer: delete %s\n", dst)
	return p.kernel.Delete(dst)
}

// Addresses of the test tier: a router, two katrans on links of their own.
var (
	vip4     = netip.MustParsePrefix("192.168.10.1/32")
	vip6     = netip.MustParsePrefix("2001:db8::10/128")
	outside  = netip.MustParsePrefix("192.168.99.1/32")
	asRouter = uint32(4200000000)
)

type katranSide struct {
	name     string
	ns       *netconf.Namespace
	asn      uint32
	addr4    netip.Addr // the katran's uplink address
	addr6    netip.Addr
	router4  netip.Addr // the router's address on the same link
	announce []netip.Prefix
}

type tier struct {
	router  *netconf.Namespace
	katrans []*katranSide
	pass    int // an XDP_PASS program's fd
}

func newTier(t *testing.T, n int) *tier {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and attaches XDP programs")
	}
	r := newNS(t, "router")
	prog, err := bpf.LoadPass()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	tr := &tier{router: r, pass: prog.FD()}
	for i := 1; i <= n; i++ {
		k := &katranSide{
			name:     fmt.Sprintf("katran%d", i),
			ns:       newNS(t, fmt.Sprintf("katran%d", i)),
			asn:      asRouter + uint32(i),
			addr4:    netip.MustParseAddr(fmt.Sprintf("10.0.%d.2", i)),
			addr6:    netip.MustParseAddr(fmt.Sprintf("fd00:%d::2", i)),
			router4:  netip.MustParseAddr(fmt.Sprintf("10.0.%d.1", i)),
			announce: []netip.Prefix{vip4, vip6},
		}
		rif := fmt.Sprintf("eth%d", i)
		if err := netconf.CreateVeth(netconf.Endpoint{NS: r, Name: rif}, netconf.Endpoint{NS: k.ns, Name: "eth0"}, 1500); err != nil {
			t.Fatal(err)
		}
		if err := r.ConfigureInterface(rif, netip.PrefixFrom(k.router4, 24), netip.MustParsePrefix(fmt.Sprintf("fd00:%d::1/64", i))); err != nil {
			t.Fatal(err)
		}
		if err := k.ns.ConfigureInterface("eth0", netip.PrefixFrom(k.addr4, 24), netip.PrefixFrom(k.addr6, 64)); err != nil {
			t.Fatal(err)
		}
		tr.katrans = append(tr.katrans, k)
	}
	return tr
}

func newNS(t *testing.T, name string) *netconf.Namespace {
	t.Helper()
	ns, err := netconf.New(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	return ns
}

func (tr *tier) routerConfig() Config {
	c := Config{
		Node: "router", Role: RoleLearn, ASN: asRouter, RouterID: tr.katrans[0].router4,
		ListenPort: DefaultPort, Hold: 3, Keepalive: 1, StatusAddr: DefaultStatusAddr,
		Accept: []netip.Prefix{vip4, vip6},
	}
	for _, k := range tr.katrans {
		c.Peers = append(c.Peers, Peer{Addr: k.addr4, ASN: k.asn, Node: k.name})
	}
	return c
}

func (k *katranSide) config() Config {
	return Config{
		Node: k.name, Role: RoleAnnounce, ASN: k.asn, RouterID: k.addr4,
		ListenPort: DefaultPort, Hold: 3, Keepalive: 1, StatusAddr: DefaultStatusAddr,
		Peers:    []Peer{{Addr: k.router4, ASN: asRouter, Node: "router"}},
		Announce: k.announce, NextHop4: k.addr4, NextHop6: k.addr6, Uplink: "eth0",
	}
}

func (tr *tier) attach(t *testing.T, k *katranSide) {
	t.Helper()
	if err := k.ns.AttachXDP("eth0", tr.pass, netconf.XDPGeneric); err != nil {
		t.Fatal(err)
	}
}

func detach(t *testing.T, k *katranSide) {
	t.Helper()
	if err := k.ns.DetachXDP("eth0", netconf.XDPGeneric); err != nil {
		t.Fatal(err)
	}
}

// speakerProc is a speaker running in its namespace, with every line it
// printed so far.
type speakerProc struct {
	name   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	exited chan struct{}
	err    error
}

func startSpeaker(t *testing.T, ns *netconf.Namespace, cfg Config) *speakerProc {
	t.Helper()
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &speakerProc{name: cfg.Node, exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(os.Environ(), speakerEnv+"="+string(data))
	p.cmd.Stderr = os.Stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Forked from a thread inside ns, the child lives there.
	if err := ns.Do(p.cmd.Start); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("%s printed:\n%s", p.name, strings.Join(p.snapshot(), "\n"))
		}
	})
	return p
}

func (p *speakerProc) snapshot() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// patience is how long a test waits for a speaker to get somewhere: long,
// because the machine is shared and nothing here measures speed.
const patience = 60 * time.Second

// waitLine waits for a line, from line number from on, that contains every
// part, and returns its number.
func (p *speakerProc) waitLine(t *testing.T, from int, parts ...string) int {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		// Whether it exited is read before the lines: the last lines come
		// before the exit.
		exited := false
		select {
		case <-p.exited:
			exited = true
		default:
		}
		lines := p.snapshot()
		for i := from; i < len(lines); i++ {
			if containsAll(lines[i], parts) {
				return i
			}
		}
		switch {
		case exited:
			t.Fatalf("%s exited (%v) before printing a line with %q after line %d", p.name, p.err, parts, from)
		case time.Now().After(deadline):
			t.Fatalf("%s: no line with %q after line %d", p.name, parts, from)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func containsAll(s string, parts []string) bool {
	for _, part := range parts {
		if !strings.Contains(s, part) {
			return false
		}
	}
	return true
}

func (p *speakerProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

func (p *speakerProc) waitExit(t *testing.T) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(patience):
		t.Fatalf("%s did not exit", p.name)
		return nil
	}
}

func readStatus(t *testing.T, ns *netconf.Namespace) *Status {
	t.Helper()
	conn, err := ns.Dial("tcp", DefaultStatusAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	st, err := ReadStatus(conn)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func installed(vip netip.Prefix, ks ...*katranSide) string {
	var vias []netip.Addr
	for _, k := range ks {
		if vip.Addr().Is4() {
			vias = append(vias, k.addr4)
		} else {
			vias = append(vias, k.addr6)
		}
	}
	// The speaker's line, which it says once its status shows the route
	// too (the installer's own "set" line comes before).
	return fmt.Sprintf("installed %s via %s", vip, addrList(vias))
}

// Two balancers announce the VIPs: the router installs each VIP over both,
// IPv4 and IPv6 (IPv6 next hops over the IPv4 sessions); a balancer whose
// XDP program goes away leaves the route, and comes back with it.
func TestRouterInstallsEveryBalancerAndFollowsXDP(t *testing.T) {
	tr := newTier(t, 2)
	k1, k2 := tr.katrans[0], tr.katrans[1]
	tr.attach(t, k1)
	tr.attach(t, k2)
	router := startSpeaker(t, tr.router, tr.routerConfig())
	katran1 := startSpeaker(t, k1.ns, k1.config())
	startSpeaker(t, k2.ns, k2.config())

	n := router.waitLine(t, 0, installed(vip4, k1, k2))
	n = max(n, router.waitLine(t, 0, installed(vip6, k1, k2)))

	st := readStatus(t, tr.router)
	if st.Node != "router" || st.Role != RoleLearn || st.ASN != asRouter || len(st.Peers) != 2 {
		t.Fatalf("router status: %+v", st)
	}
	for i, p := range st.Peers {
		k := tr.katrans[i]
		if p.Addr != k.addr4 || p.Node != k.name || p.ASN != k.asn || p.State != "established" || p.Received != 2 || p.Accepted != 2 || p.Advertised != 0 {
			t.Errorf("router's session %d: %+v", i, p)
		}
	}
	wantInstalled := []Route{
		{Prefix: vip4, NextHops: []netip.Addr{k1.addr4, k2.addr4}},
		{Prefix: vip6, NextHops: []netip.Addr{k1.addr6, k2.addr6}},
	}
	if fmt.Sprint(st.Installed) != fmt.Sprint(wantInstalled) {
		t.Errorf("router installed %v, want %v", st.Installed, wantInstalled)
	}
	ks := readStatus(t, k1.ns)
	if ks.Attached == nil || !*ks.Attached || fmt.Sprint(ks.Announced) != fmt.Sprint(k1.announce) ||
		len(ks.Peers) != 1 || ks.Peers[0].State != "established" || ks.Peers[0].Advertised != 2 || ks.Peers[0].Accepted != 0 {
		t.Errorf("katran1 status: %+v", ks)
	}

	detach(t, k1)
	n = max(router.waitLine(t, n, installed(vip4, k2)), router.waitLine(t, n, installed(vip6, k2)))
	// katran1 says it withdrew once its status says so; the router may
	// have acted on the withdrawal before that.
	katran1.waitLine(t, 0, "withdraw "+vip4.String())
	ks = readStatus(t, k1.ns)
	if *ks.Attached || len(ks.Announced) != 0 || ks.Peers[0].State != "established" {
		t.Errorf("katran1 status without XDP: %+v", ks)
	}
	tr.attach(t, k1)
	router.waitLine(t, n, installed(vip4, k1, k2))
	waitKernelRoute(t, tr.router, vip4, k1.addr4, k2.addr4)
	waitKernelRoute(t, tr.router, vip6, k1.addr6, k2.addr6)

	// A router told to stop takes its routes away with its sessions.
	router.signal(t, syscall.SIGTERM)
	if err := router.waitExit(t); err != nil {
		t.Fatalf("router after SIGTERM: %v", err)
	}
	router.waitLine(t, n, "installer: delete "+vip4.String())
	waitKernelRoute(t, tr.router, vip4)
}

// waitKernelRoute waits until the router's kernel routes dst over a
// resilient nexthop group of exactly these next hops (none: no route).
func waitKernelRoute(t *testing.T, ns *netconf.Namespace, dst netip.Prefix, want ...netip.Addr) {
	t.Helper()
	var got []netip.Addr
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) {
		routes, err := ns.ECMPRoutes()
		if err != nil {
			t.Fatal(err)
		}
		got = nil
		for _, r := range routes {
			if r.Dst == dst && r.Protocol == netconf.ProtoBGP {
				for _, nh := range r.NextHops {
					got = append(got, nh.Via)
				}
			}
		}
		slices.SortFunc(got, netip.Addr.Compare)
		if slices.Equal(got, want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("kernel routes %s via %v, want %v", dst, got, want)
}

// A balancer told to stop withdraws its VIPs while its session is still up
// (the router moves the flows at once), then closes the session with a
// Cease, and exits 0.
func TestCleanStopWithdrawsBeforeClosing(t *testing.T) {
	tr := newTier(t, 2)
	k1, k2 := tr.katrans[0], tr.katrans[1]
	tr.attach(t, k1)
	tr.attach(t, k2)
	router := startSpeaker(t, tr.router, tr.routerConfig())
	katran1 := startSpeaker(t, k1.ns, k1.config())
	startSpeaker(t, k2.ns, k2.config())
	n := router.waitLine(t, 0, installed(vip4, k1, k2))

	katran1.signal(t, syscall.SIGTERM)
	if err := katran1.waitExit(t); err != nil {
		t.Fatalf("katran1 after SIGTERM: %v", err)
	}
	withdrawn := router.waitLine(t, n, "route "+vip4.String()+" withdrawn by katran1")
	router.waitLine(t, n, installed(vip4, k2)) // the route moved to katran2
	down := router.waitLine(t, n, "session down with katran1", "notification-received", "cease")
	// Withdrawal and session end come in one stream from GoBGP, in the
	// order katran1 sent them; the route is moved by the router's own
	// loop, which the withdrawal wakes: it may say so after the session
	// ended.
	if withdrawn > down {
		t.Errorf("router heard of the stop (line %d) before the withdrawal (line %d)", down, withdrawn)
	}
	katran1.waitLine(t, 0, "withdraw "+vip4.String())
}

// A balancer that dies without a word (frozen, then killed: no keepalive,
// no FIN) leaves the router's routes when the hold timer runs out; one that
// comes back is installed again. With no balancer left the route goes.
func TestDeadBalancerLeavesAfterHoldTime(t *testing.T) {
	tr := newTier(t, 2)
	k1, k2 := tr.katrans[0], tr.katrans[1]
	tr.attach(t, k1)
	tr.attach(t, k2)
	router := startSpeaker(t, tr.router, tr.routerConfig())
	katran1 := startSpeaker(t, k1.ns, k1.config())
	katran2 := startSpeaker(t, k2.ns, k2.config())
	n := router.waitLine(t, 0, installed(vip4, k1, k2))

	katran1.signal(t, syscall.SIGSTOP)
	down := router.waitLine(t, n, "session down with katran1", "hold-timer-expired")
	router.waitLine(t, n, installed(vip4, k2))
	katran1.signal(t, syscall.SIGKILL)
	katran1.waitExit(t)

	startSpeaker(t, k1.ns, k1.config())
	router.waitLine(t, down, "session up with katran1")
	router.waitLine(t, down, installed(vip4, k1, k2))

	katran2.signal(t, syscall.SIGKILL)
	n = router.waitLine(t, down, "session down with katran2")
	router.waitLine(t, n, installed(vip4, k1))
}

// A router installs nothing outside its accepted VIPs, whatever a peer
// announces; the status says how many of a peer's routes it took. (The
// katran starts before its XDP program, as after a crash.)
func TestRouterInstallsOnlyAcceptedPrefixes(t *testing.T) {
	tr := newTier(t, 1)
	k1 := tr.katrans[0]
	k1.announce = []netip.Prefix{outside, vip4}
	router := startSpeaker(t, tr.router, tr.routerConfig())
	katran1 := startSpeaker(t, k1.ns, k1.config())
	// Nothing before the balancer is there.
	katran1.waitLine(t, 0, "not announcing", "no XDP program on eth0")
	tr.attach(t, k1)
	router.waitLine(t, 0, "route "+outside.String()+" via 10.0.1.2 received from katran1")
	router.waitLine(t, 0, installed(vip4, k1))
	var st *Status
	deadline := time.Now().Add(patience)
	for st = readStatus(t, tr.router); st.Peers[0].Received != 2 && time.Now().Before(deadline); st = readStatus(t, tr.router) {
		time.Sleep(100 * time.Millisecond)
	}
	if p := st.Peers[0]; p.Received != 2 || p.Accepted != 1 {
		t.Errorf("router's session: %+v, want 2 received, 1 accepted", p)
	}
	for _, line := range router.snapshot() {
		if strings.Contains(line, "installer") && strings.Contains(line, outside.String()) {
			t.Errorf("installed a prefix outside accept: %s", line)
		}
	}
}

func TestAcceptsOnlyListedVIPs(t *testing.T) {
	sp := &speaker{cfg: routerConfig()}
	for _, c := range []struct {
		p    string
		want bool
	}{
		{"192.168.10.1/32", true},
		{"2001:db8::10/128", true},
		{"192.168.10.2/32", false},
		{"0.0.0.0/0", false},
		{"::/0", false},
		{"192.168.10.0/24", false},
	} {
		if got := sp.accepts(netip.MustParsePrefix(c.p)); got != c.want {
			t.Errorf("accepts(%s) = %v", c.p, got)
		}
	}
}
