package nat

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/dsrlab/dsrlab/internal/testns"
)

// The kernel tests build, in namespaces of their own:
//
//	client 10.0.1.2 ── 10.0.1.1 lb 10.0.2.1 ── 10.0.2.2 realA
//	                            lb 10.0.3.1 ── 10.0.3.2 realB
//
// The client reaches the VIP through the lb only; the reals' default route
// is the lb. No packet is sent anywhere else.

const port = 8080

var clientIP = netip.MustParseAddr("10.0.1.2")

type node struct {
	name string
	ns   netns.NsHandle
	h    *netlink.Handle
}

type lab struct{ client, lb, realA, realB *node }

func newNode(t *testing.T, name string) *node {
	t.Helper()
	ns := testns.New(t)
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name, ns, h}
	t.Cleanup(h.Close)
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("%s: lo: %v", name, err)
	}
	return n
}

// do runs fn on a thread inside the node's namespace; sockets fn opens stay
// there for life.
func (n *node) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(n.ns); err != nil {
			errc <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it dies with the goroutine
			// instead of serving others from the wrong namespace.
			errc <- err
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func link(t *testing.T, a *node, aName, aAddr string, b *node, bName, bAddr string) {
	t.Helper()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: aName},
		PeerName:      bName,
		PeerNamespace: netlink.NsFd(int(b.ns)),
	}
	if err := a.h.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s:%s - %s:%s: %v", a.name, aName, b.name, bName, err)
	}
	for _, end := range []struct {
		n          *node
		name, addr string
	}{{a, aName, aAddr}, {b, bName, bAddr}} {
		l, err := end.n.h.LinkByName(end.name)
		if err != nil {
			t.Fatal(err)
		}
		addr, err := netlink.ParseAddr(end.addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := end.n.h.AddrAdd(l, addr); err != nil {
			t.Fatalf("%s: %s on %s: %v", end.n.name, end.addr, end.name, err)
		}
		if err := end.n.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
}

func route(t *testing.T, n *node, dst, via string) {
	t.Helper()
	r := &netlink.Route{Gw: net.ParseIP(via)}
	if dst != "" {
		_, r.Dst, _ = net.ParseCIDR(dst)
	}
	if err := n.h.RouteAdd(r); err != nil {
		t.Fatalf("%s: route %q via %s: %v", n.name, dst, via, err)
	}
}

func newLab(t *testing.T) *lab {
	t.Helper()
	l := &lab{newNode(t, "client"), newNode(t, "lb"), newNode(t, "realA"), newNode(t, "realB")}
	link(t, l.client, "eth0", "10.0.1.2/24", l.lb, "eth0", "10.0.1.1/24")
	link(t, l.lb, "eth1", "10.0.2.1/24", l.realA, "eth0", "10.0.2.2/24")
	link(t, l.lb, "eth2", "10.0.3.1/24", l.realB, "eth0", "10.0.3.2/24")
	route(t, l.client, vip.String()+"/32", "10.0.1.1")
	route(t, l.realA, "", "10.0.2.1")
	route(t, l.realB, "", "10.0.3.1")
	// /proc/sys/net belongs to the namespace of whoever opens it.
	if err := l.lb.do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0)
	}); err != nil {
		t.Fatalf("lb: ip_forward: %v", err)
	}
	return l
}

// seen is what one real observed for one flow.
type seen struct{ backend, peer string }

// serveTCP answers every line with "<local> <peer>" and records the pair.
func serveTCP(t *testing.T, n *node, addr netip.Addr, log chan<- seen) {
	t.Helper()
	var ln net.Listener
	if err := n.do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, port).String())
		return err
	}); err != nil {
		t.Fatalf("%s: listen: %v", n.name, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s := seen{c.LocalAddr().String(), c.RemoteAddr().String()}
				log <- s
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					fmt.Fprintf(c, "%s %s\n", s.backend, s.peer)
				}
			}()
		}
	}()
}

func serveUDP(t *testing.T, n *node, addr netip.Addr, log chan<- seen) {
	t.Helper()
	var pc net.PacketConn
	if err := n.do(func() (err error) {
		pc, err = net.ListenPacket("udp", netip.AddrPortFrom(addr, port).String())
		return err
	}); err != nil {
		t.Fatalf("%s: listen: %v", n.name, err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			_, peer, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s := seen{pc.LocalAddr().String(), peer.String()}
			log <- s
			pc.WriteTo([]byte(s.backend+" "+s.peer), peer)
		}
	}()
}

// dialVIP opens a TCP connection to the VIP from a chosen client port.
func dialVIP(t *testing.T, l *lab, srcPort int) net.Conn {
	t.Helper()
	var c net.Conn
	err := l.client.do(func() (err error) {
		d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: clientIP.AsSlice(), Port: srcPort}}
		c, err = d.Dial("tcp", netip.AddrPortFrom(vip, port).String())
		return err
	})
	if err != nil {
		t.Fatalf("client: dial VIP from port %d: %v", srcPort, err)
	}
	return c
}

// ask sends a line and returns the real's answer: which backend, and which
// peer it saw.
func ask(t *testing.T, c net.Conn) seen {
	t.Helper()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintln(c, "hello"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		t.Fatalf("answer %q", line)
	}
	return seen{f[0], f[1]}
}

func apply(t *testing.T, n *node, services ...Service) {
	t.Helper()
	if err := Apply(int(n.ns), services); err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
}

func service(proto string, backends ...Backend) Service {
	return Service{VIP: vip, Port: port, Proto: proto, SNAT: lbIP, Backends: backends}
}

func TestKernelTCPIsDNATedAndSNATed(t *testing.T) {
	l := newLab(t)
	log := make(chan seen, 10)
	serveTCP(t, l.realA, realA, log)
	// Twice: the second Apply replaces the table with an equal one.
	apply(t, l.lb, service("tcp", Backend{realA, 1}))
	apply(t, l.lb, service("tcp", Backend{realA, 1}))

	c := dialVIP(t, l, 40000)
	defer c.Close()
	// A connected TCP socket only takes segments from the 4-tuple it
	// dialed, so an answer at all means it came from VIP:8080.
	if got := c.RemoteAddr().String(); got != "192.168.10.1:8080" {
		t.Errorf("client talks to %s", got)
	}
	got := ask(t, c)
	if got.backend != "10.0.2.2:8080" {
		t.Errorf("answered by %s, want realA 10.0.2.2:8080", got.backend)
	}
	if host, _, _ := strings.Cut(got.peer, ":"); host != "10.0.2.1" {
		t.Errorf("real saw the client as %s, want the lb's SNAT address 10.0.2.1", got.peer)
	}
}

func TestKernelUDPIsDNATedAndSNATed(t *testing.T) {
	l := newLab(t)
	log := make(chan seen, 10)
	serveUDP(t, l.realA, realA, log)
	apply(t, l.lb, service("udp", Backend{realA, 1}))

	var pc net.PacketConn
	if err := l.client.do(func() (err error) {
		pc, err = net.ListenPacket("udp", "10.0.1.2:40001")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(3 * time.Second))
	// Unconnected, so the reply's real source address is visible.
	if _, err := pc.WriteTo([]byte("hello"), net.UDPAddrFromAddrPort(netip.AddrPortFrom(vip, port))); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, from, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no UDP answer: %v", err)
	}
	if from.String() != "192.168.10.1:8080" {
		t.Errorf("answer came from %s, want the VIP", from)
	}
	f := strings.Fields(string(buf[:n]))
	if len(f) != 2 || f[0] != "10.0.2.2:8080" || !strings.HasPrefix(f[1], "10.0.2.1:") {
		t.Errorf("real answered %q, want realA seeing the lb 10.0.2.1", buf[:n])
	}
}

// flows opens n connections from distinct client ports and returns how many
// each backend answered, checking each saw the lb as the client.
func flows(t *testing.T, l *lab, firstPort, n int) map[string]int {
	t.Helper()
	count := map[string]int{}
	for p := firstPort; p < firstPort+n; p++ {
		c := dialVIP(t, l, p)
		got := ask(t, c)
		c.Close()
		if !strings.HasPrefix(got.peer, "10.0.2.1:") {
			t.Errorf("%s saw the client as %s, want 10.0.2.1", got.backend, got.peer)
		}
		count[got.backend]++
	}
	return count
}

func TestKernelTwoBackendsShareFlows(t *testing.T) {
	l := newLab(t)
	log := make(chan seen, 200)
	serveTCP(t, l.realA, realA, log)
	serveTCP(t, l.realB, realB, log)
	apply(t, l.lb, service("tcp", Backend{realA, 1}, Backend{realB, 1}))

	count := flows(t, l, 41000, 50)
	t.Logf("50 flows: %v", count)
	if count["10.0.2.2:8080"] == 0 || count["10.0.3.2:8080"] == 0 || len(count) != 2 {
		t.Errorf("flows per backend = %v, want both reals used", count)
	}

	apply(t, l.lb, service("tcp", Backend{realA, 3}, Backend{realB, 1}))
	count = flows(t, l, 44000, 80)
	t.Logf("80 flows at 3:1: %v", count)
	if a, b := count["10.0.2.2:8080"], count["10.0.3.2:8080"]; b == 0 || a < 2*b {
		t.Errorf("flows per backend at weights 3:1 = %v", count)
	}
}

// Setting a backend's weight to 0 stops new flows to it, while a flow it
// already serves goes on: conntrack, not the rules, holds the binding.
func TestKernelWeightZeroDrains(t *testing.T) {
	l := newLab(t)
	log := make(chan seen, 200)
	serveTCP(t, l.realA, realA, log)
	serveTCP(t, l.realB, realB, log)
	apply(t, l.lb, service("tcp", Backend{realA, 1}, Backend{realB, 1}))

	// Find a long-lived flow on realB.
	var kept net.Conn
	for p := 42000; p < 42050 && kept == nil; p++ {
		c := dialVIP(t, l, p)
		if ask(t, c).backend == "10.0.3.2:8080" {
			kept = c
		} else {
			c.Close()
		}
	}
	if kept == nil {
		t.Fatal("no flow landed on realB")
	}
	defer kept.Close()

	apply(t, l.lb, service("tcp", Backend{realA, 1}, Backend{realB, 0}))
	if got := ask(t, kept); got.backend != "10.0.3.2:8080" {
		t.Errorf("established flow moved to %s", got.backend)
	}
	if count := flows(t, l, 43000, 20); count["10.0.3.2:8080"] != 0 {
		t.Errorf("drained realB still got new flows: %v", count)
	}

	// No weight left at all: new flows are refused, not routed on.
	apply(t, l.lb, service("tcp", Backend{realA, 0}, Backend{realB, 0}))
	err := l.client.do(func() error {
		d := net.Dialer{Timeout: 500 * time.Millisecond}
		c, err := d.Dial("tcp", netip.AddrPortFrom(vip, port).String())
		if err == nil {
			c.Close()
		}
		return err
	})
	if err == nil {
		t.Error("a new flow got through with every weight at 0")
	}
}

func tableNames(t *testing.T, n *node) []string {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(n.ns)))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range tables {
		names = append(names, x.Name)
	}
	return names
}

func TestKernelApplyIsIdempotentAndRemoveCleansUp(t *testing.T) {
	n := newNode(t, "lb")
	fd := int(n.ns)

	// A table that is not ours must survive everything below.
	c, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		t.Fatal(err)
	}
	c.AddTable(&nftables.Table{Name: "other", Family: nftables.TableFamilyIPv4})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}

	if got, err := Rules(fd); err != nil || got != nil {
		t.Fatalf("Rules before Apply = %v, %v; want nothing", got, err)
	}
	svcs := []Service{
		service("tcp", Backend{realA, 3}, Backend{realB, 1}),
		{VIP: vip, Port: 53, Proto: "udp", Backends: []Backend{{realB, 5}}},
	}
	want := []Service{
		service("tcp", Backend{realA, 3}, Backend{realB, 1}),
		{VIP: vip, Port: 53, Proto: "udp", Backends: []Backend{{realB, 1}}},
	}
	for i := range 2 {
		if err := Apply(fd, svcs); err != nil {
			t.Fatalf("Apply #%d: %v", i+1, err)
		}
		got, err := Rules(fd)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("after Apply #%d, kernel holds\n%+v\nwant\n%+v", i+1, got, want)
		}
		if names := tableNames(t, n); !reflect.DeepEqual(names, []string{"other", TableName}) {
			t.Errorf("after Apply #%d, tables = %v", i+1, names)
		}
	}

	// A different set of services replaces the old one entirely.
	if err := Apply(fd, svcs[1:]); err != nil {
		t.Fatal(err)
	}
	if got, _ := Rules(fd); !reflect.DeepEqual(got, want[1:]) {
		t.Errorf("after replacing, kernel holds %+v", got)
	}

	for i := range 2 {
		if err := Remove(fd); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	if names := tableNames(t, n); !reflect.DeepEqual(names, []string{"other"}) {
		t.Errorf("after Remove, tables = %v", names)
	}
	if got, err := Rules(fd); err != nil || got != nil {
		t.Errorf("Rules after Remove = %v, %v", got, err)
	}
}

// Concurrent Apply calls on one namespace must each leave a whole table,
// never a mix; the kernel serialises the transactions.
func TestKernelConcurrentApply(t *testing.T) {
	n := newNode(t, "lb")
	fd := int(n.ns)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			w := uint32(i + 1)
			if err := Apply(fd, []Service{service("tcp", Backend{realA, w}, Backend{realB, 1})}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := Rules(fd)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Backends) != 2 || got[0].Backends[1].Weight != 1 {
		t.Errorf("after concurrent Apply: %+v", got)
	}
}
