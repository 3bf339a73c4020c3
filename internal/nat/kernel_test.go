package nat

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dsrlab/dsrlab/internal/testns"
)

// The kernel tests build, in namespaces of their own, on both families:
//
//	client 10.0.1.2  ── 10.0.1.1  lb 10.0.2.1  ── 10.0.2.2  realA
//	       fd00:1::2 ── fd00:1::1    fd00:2::1 ── fd00:2::2
//	                              lb 10.0.3.1  ── 10.0.3.2  realB
//	                                 fd00:3::1 ── fd00:3::2
//
// The client reaches the VIPs (v4.vip, v6.vip) through the lb only; the
// reals' default routes are the lb. No packet is sent anywhere else.

const port = 8080

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
	// Duplicate address detection would hold IPv6 addresses, link-local
	// ones too, back for a second; the test's addresses are unique.
	if err := n.do(func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/default/accept_dad", []byte("0"), 0)
	}); err != nil {
		t.Fatalf("%s: accept_dad: %v", name, err)
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

// link joins a and b by a veth; each pair of addrs is a's and b's address
// on one subnet.
func link(t *testing.T, a *node, aName string, b *node, bName string, addrs ...[2]string) {
	t.Helper()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: aName},
		PeerName:      bName,
		PeerNamespace: netlink.NsFd(int(b.ns)),
	}
	if err := a.h.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s:%s - %s:%s: %v", a.name, aName, b.name, bName, err)
	}
	for i, end := range []struct {
		n    *node
		name string
	}{{a, aName}, {b, bName}} {
		l, err := end.n.h.LinkByName(end.name)
		if err != nil {
			t.Fatal(err)
		}
		for _, pair := range addrs {
			addr, err := netlink.ParseAddr(pair[i])
			if err != nil {
				t.Fatal(err)
			}
			// Else the address is tentative until DAD's work item runs,
			// even with accept_dad off, and cannot be bound yet.
			addr.Flags = unix.IFA_F_NODAD
			if err := end.n.h.AddrAdd(l, addr); err != nil {
				t.Fatalf("%s: %s on %s: %v", end.n.name, pair[i], end.name, err)
			}
		}
		if err := end.n.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
}

// waitUp waits until every link of n is operationally up. The kernel
// reports a veth's carrier through linkwatch, which batches events up to a
// second apart; until then IPv6 on the link is not ready and its first
// packets are lost, to be retried by TCP a second later, or never for UDP.
func waitUp(t *testing.T, n *node) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		links, err := n.h.LinkList()
		if err != nil {
			t.Fatal(err)
		}
		down := slices.IndexFunc(links, func(l netlink.Link) bool {
			return l.Attrs().Name != "lo" && l.Attrs().OperState != netlink.OperUp
		})
		if down < 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s is still %s", n.name, links[down].Attrs().Name, links[down].Attrs().OperState)
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
	link(t, l.client, "eth0", l.lb, "eth0", [2]string{"10.0.1.2/24", "10.0.1.1/24"}, [2]string{"fd00:1::2/64", "fd00:1::1/64"})
	link(t, l.lb, "eth1", l.realA, "eth0", [2]string{"10.0.2.1/24", "10.0.2.2/24"}, [2]string{"fd00:2::1/64", "fd00:2::2/64"})
	link(t, l.lb, "eth2", l.realB, "eth0", [2]string{"10.0.3.1/24", "10.0.3.2/24"}, [2]string{"fd00:3::1/64", "fd00:3::2/64"})
	route(t, l.client, v4.vip.String()+"/32", "10.0.1.1")
	route(t, l.client, v6.vip.String()+"/128", "fd00:1::1")
	route(t, l.realA, "", "10.0.2.1")
	route(t, l.realA, "", "fd00:2::1")
	route(t, l.realB, "", "10.0.3.1")
	route(t, l.realB, "", "fd00:3::1")
	for _, n := range []*node{l.client, l.lb, l.realA, l.realB} {
		waitUp(t, n)
	}
	// /proc/sys/net belongs to the namespace of whoever opens it.
	for _, knob := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
		if err := l.lb.do(func() error { return os.WriteFile(knob, []byte("1"), 0) }); err != nil {
			t.Fatalf("lb: %s: %v", knob, err)
		}
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

// dialVIP opens a TCP connection to f's VIP from a chosen client port.
func dialVIP(t *testing.T, l *lab, f addrs, srcPort int) net.Conn {
	t.Helper()
	var c net.Conn
	err := l.client.do(func() (err error) {
		d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(f.client, uint16(srcPort)))}
		c, err = d.Dial("tcp", netip.AddrPortFrom(f.vip, port).String())
		return err
	})
	if err != nil {
		t.Fatalf("client: dial %s VIP from port %d: %v", f.name, srcPort, err)
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

// at is addr:port as a listener or peer prints it.
func at(addr netip.Addr) string { return netip.AddrPortFrom(addr, port).String() }

// peerHost is the address part of a printed peer.
func peerHost(t *testing.T, peer string) netip.Addr {
	t.Helper()
	ap, err := netip.ParseAddrPort(peer)
	if err != nil {
		t.Fatalf("peer %q: %v", peer, err)
	}
	return ap.Addr()
}

func apply(t *testing.T, n *node, services ...Service) {
	t.Helper()
	if err := Apply(int(n.ns), services); err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
}

func TestKernelTCPIsDNATedAndSNATed(t *testing.T) {
	for _, f := range bothFamilies {
		t.Run(f.name, func(t *testing.T) {
			l := newLab(t)
			log := make(chan seen, 10)
			serveTCP(t, l.realA, f.realA, log)
			// Both families in one Apply, and twice: the second
			// replaces the tables with equal ones.
			both := []Service{v4.service("tcp", Backend{v4.realA, 1}), v6.service("tcp", Backend{v6.realA, 1})}
			apply(t, l.lb, both...)
			apply(t, l.lb, both...)

			c := dialVIP(t, l, f, 40000)
			defer c.Close()
			// A connected TCP socket only takes segments from the
			// 4-tuple it dialed, so an answer at all means it came
			// from VIP:8080.
			if got := c.RemoteAddr().String(); got != at(f.vip) {
				t.Errorf("client talks to %s", got)
			}
			got := ask(t, c)
			if got.backend != at(f.realA) {
				t.Errorf("answered by %s, want realA %s", got.backend, at(f.realA))
			}
			if host := peerHost(t, got.peer); host != f.lb {
				t.Errorf("real saw the client as %s, want the lb's SNAT address %s", got.peer, f.lb)
			}
		})
	}
}

func TestKernelUDPIsDNATedAndSNATed(t *testing.T) {
	for _, f := range bothFamilies {
		t.Run(f.name, func(t *testing.T) {
			l := newLab(t)
			log := make(chan seen, 10)
			serveUDP(t, l.realA, f.realA, log)
			apply(t, l.lb, f.service("udp", Backend{f.realA, 1}))

			var pc net.PacketConn
			if err := l.client.do(func() (err error) {
				pc, err = net.ListenPacket("udp", netip.AddrPortFrom(f.client, 40001).String())
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			pc.SetDeadline(time.Now().Add(3 * time.Second))
			// Unconnected, so the reply's real source address is visible.
			if _, err := pc.WriteTo([]byte("hello"), net.UDPAddrFromAddrPort(netip.AddrPortFrom(f.vip, port))); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				t.Fatalf("no UDP answer: %v", err)
			}
			if from.String() != at(f.vip) {
				t.Errorf("answer came from %s, want the VIP", from)
			}
			a := strings.Fields(string(buf[:n]))
			if len(a) != 2 || a[0] != at(f.realA) || peerHost(t, a[1]) != f.lb {
				t.Errorf("real answered %q, want realA seeing the lb %s", buf[:n], f.lb)
			}
		})
	}
}

// flows opens n connections from distinct client ports and returns how many
// each backend answered, checking each saw the lb as the client.
func flows(t *testing.T, l *lab, f addrs, firstPort, n int) map[string]int {
	t.Helper()
	count := map[string]int{}
	for p := firstPort; p < firstPort+n; p++ {
		c := dialVIP(t, l, f, p)
		got := ask(t, c)
		c.Close()
		if peerHost(t, got.peer) != f.lb {
			t.Errorf("%s saw the client as %s, want %s", got.backend, got.peer, f.lb)
		}
		count[got.backend]++
	}
	return count
}

func TestKernelTwoBackendsShareFlows(t *testing.T) {
	for _, f := range bothFamilies {
		t.Run(f.name, func(t *testing.T) {
			l := newLab(t)
			log := make(chan seen, 200)
			serveTCP(t, l.realA, f.realA, log)
			serveTCP(t, l.realB, f.realB, log)
			apply(t, l.lb, f.service("tcp", Backend{f.realA, 1}, Backend{f.realB, 1}))

			count := flows(t, l, f, 41000, 50)
			t.Logf("50 flows: %v", count)
			if count[at(f.realA)] == 0 || count[at(f.realB)] == 0 || len(count) != 2 {
				t.Errorf("flows per backend = %v, want both reals used", count)
			}

			apply(t, l.lb, f.service("tcp", Backend{f.realA, 3}, Backend{f.realB, 1}))
			count = flows(t, l, f, 44000, 80)
			t.Logf("80 flows at 3:1: %v", count)
			if a, b := count[at(f.realA)], count[at(f.realB)]; b == 0 || a < 2*b {
				t.Errorf("flows per backend at weights 3:1 = %v", count)
			}
		})
	}
}

// Setting a backend's weight to 0 stops new flows to it, while a flow it
// already serves goes on: conntrack, not the rules, holds the binding.
func TestKernelWeightZeroDrains(t *testing.T) {
	for _, f := range bothFamilies {
		t.Run(f.name, func(t *testing.T) {
			l := newLab(t)
			log := make(chan seen, 200)
			serveTCP(t, l.realA, f.realA, log)
			serveTCP(t, l.realB, f.realB, log)
			apply(t, l.lb, f.service("tcp", Backend{f.realA, 1}, Backend{f.realB, 1}))

			// Find a long-lived flow on realB.
			var kept net.Conn
			for p := 42000; p < 42050 && kept == nil; p++ {
				c := dialVIP(t, l, f, p)
				if ask(t, c).backend == at(f.realB) {
					kept = c
				} else {
					c.Close()
				}
			}
			if kept == nil {
				t.Fatal("no flow landed on realB")
			}
			defer kept.Close()

			apply(t, l.lb, f.service("tcp", Backend{f.realA, 1}, Backend{f.realB, 0}))
			if got := ask(t, kept); got.backend != at(f.realB) {
				t.Errorf("established flow moved to %s", got.backend)
			}
			if count := flows(t, l, f, 43000, 20); count[at(f.realB)] != 0 {
				t.Errorf("drained realB still got new flows: %v", count)
			}

			// No weight left at all: new flows are refused, not routed on.
			apply(t, l.lb, f.service("tcp", Backend{f.realA, 0}, Backend{f.realB, 0}))
			err := l.client.do(func() error {
				d := net.Dialer{Timeout: 500 * time.Millisecond}
				c, err := d.Dial("tcp", netip.AddrPortFrom(f.vip, port).String())
				if err == nil {
					c.Close()
				}
				return err
			})
			if err == nil {
				t.Error("a new flow got through with every weight at 0")
			}
		})
	}
}

// tables lists the namespace's nftables tables as "family name".
func tables(t *testing.T, n *node) []string {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(n.ns)))
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	family := map[nftables.TableFamily]string{
		nftables.TableFamilyIPv4: "ip", nftables.TableFamilyIPv6: "ip6", nftables.TableFamilyINet: "inet",
	}
	var names []string
	for _, x := range all {
		names = append(names, family[x.Family]+" "+x.Name)
	}
	slices.Sort(names)
	return names
}

func TestKernelApplyIsIdempotentAndRemoveCleansUp(t *testing.T) {
	n := newNode(t, "lb")
	fd := int(n.ns)

	// Tables that are not ours must survive everything below, even one
	// with our name in a family we do not write.
	c, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		t.Fatal(err)
	}
	others := []string{"inet " + TableName, "ip other", "ip6 other"}
	c.AddTable(&nftables.Table{Name: "other", Family: nftables.TableFamilyIPv4})
	c.AddTable(&nftables.Table{Name: "other", Family: nftables.TableFamilyIPv6})
	c.AddTable(&nftables.Table{Name: TableName, Family: nftables.TableFamilyINet})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	withOurs := func(families ...string) []string {
		names := slices.Clone(others)
		for _, f := range families {
			names = append(names, f+" "+TableName)
		}
		slices.Sort(names)
		return names
	}

	if got, err := Rules(fd); err != nil || got != nil {
		t.Fatalf("Rules before Apply = %v, %v; want nothing", got, err)
	}
	// Given interleaved; read back IPv4 first, weights as slots.
	svcs := []Service{
		v6.service("tcp", Backend{v6.realA, 2}, Backend{v6.realB, 6}),
		v4.service("tcp", Backend{v4.realA, 3}, Backend{v4.realB, 1}),
		{VIP: v6.vip, Port: 53, Proto: "udp", Backends: []Backend{{v6.realB, 7}}},
		{VIP: v4.vip, Port: 53, Proto: "udp", Backends: []Backend{{v4.realB, 5}}},
	}
	want := []Service{
		v4.service("tcp", Backend{v4.realA, 3}, Backend{v4.realB, 1}),
		{VIP: v4.vip, Port: 53, Proto: "udp", Backends: []Backend{{v4.realB, 1}}},
		v6.service("tcp", Backend{v6.realA, 1}, Backend{v6.realB, 3}),
		{VIP: v6.vip, Port: 53, Proto: "udp", Backends: []Backend{{v6.realB, 1}}},
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
		if names := tables(t, n); !reflect.DeepEqual(names, withOurs("ip", "ip6")) {
			t.Errorf("after Apply #%d, tables = %v", i+1, names)
		}
	}

	// A different set of services replaces the old one entirely, in both
	// families: a family left without services loses its table.
	for _, c := range []struct {
		name     string
		svcs     []Service
		want     []Service
		families []string
	}{
		{"IPv4 only", svcs[1:2], want[:1], []string{"ip"}},
		{"IPv6 only", svcs[2:3], want[3:], []string{"ip6"}},
		{"both again", svcs, want, []string{"ip", "ip6"}},
	} {
		if err := Apply(fd, c.svcs); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got, err := Rules(fd); err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: kernel holds %+v, %v; want %+v", c.name, got, err, c.want)
		}
		if names := tables(t, n); !reflect.DeepEqual(names, withOurs(c.families...)) {
			t.Errorf("%s: tables = %v", c.name, names)
		}
	}

	for i := range 2 {
		if err := Remove(fd); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	if names := tables(t, n); !reflect.DeepEqual(names, others) {
		t.Errorf("after Remove, tables = %v", names)
	}
	if got, err := Rules(fd); err != nil || got != nil {
		t.Errorf("Rules after Remove = %v, %v", got, err)
	}
}

// Both families change in one transaction: when the kernel refuses the
// IPv6 table, the IPv4 one it would have replaced is still the old one.
func TestKernelApplyIsOneTransaction(t *testing.T) {
	n := newNode(t, "lb")
	fd := int(n.ns)
	old := []Service{v4.service("tcp", Backend{v4.realA, 1}), v6.service("tcp", Backend{v6.realA, 1})}
	if err := Apply(fd, old); err != nil {
		t.Fatal(err)
	}
	rss, err := build([]Service{v4.service("udp", Backend{v4.realB, 1}), v6.service("udp", Backend{v6.realB, 1})})
	if err != nil {
		t.Fatal(err)
	}
	// The IPv6 table is sent last; a lookup in a set that does not exist
	// makes the kernel refuse the whole batch there.
	bad := rss[1].rules[0]
	bad.Exprs = append(bad.Exprs, &expr.Lookup{SourceRegister: reg, SetName: "missing"})
	if err := send(fd, rss); err == nil {
		t.Fatal("the kernel took a rule using a missing set")
	}
	if got, err := Rules(fd); err != nil || !reflect.DeepEqual(got, old) {
		t.Errorf("after a refused Apply, kernel holds %+v, %v; want the old services %+v", got, err, old)
	}
}

// Concurrent Apply calls on one namespace must each leave whole tables,
// never a mix; the kernel serialises the transactions.
func TestKernelConcurrentApply(t *testing.T) {
	n := newNode(t, "lb")
	fd := int(n.ns)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			w := uint32(i + 1)
			if err := Apply(fd, []Service{
				v4.service("tcp", Backend{v4.realA, w}, Backend{v4.realB, 1}),
				v6.service("tcp", Backend{v6.realA, w}, Backend{v6.realB, 1}),
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := Rules(fd)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(got[0].Backends) != 2 || got[0].Backends[1].Weight != 1 ||
		!reflect.DeepEqual(got[0].Backends[0].Weight, got[1].Backends[0].Weight) {
		t.Errorf("after concurrent Apply: %+v", got)
	}
}
