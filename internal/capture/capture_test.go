package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dsrlab/dsrlab/internal/capture/filter"
	pt "github.com/dsrlab/dsrlab/internal/capture/packettest"
	"github.com/dsrlab/dsrlab/internal/testns"
)

// testNS runs functions inside a test's namespace. netconf.Namespace does
// the same for the real command, but has no constructor from a bare
// handle outside its package.
type testNS struct{ h netns.NsHandle }

func (n testNS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: Go retires it with the goroutine,
		// so no other code runs in the test's namespace by accident.
		runtime.LockOSThread()
		if err := netns.Set(n.h); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

const (
	addrA = "10.9.0.1"
	addrB = "10.9.0.2"
)

// pair is two fresh namespaces joined by a veth pair, a (10.9.0.1) in the
// first and b (10.9.0.2) in the second, with IPv6 off and static
// neighbours, so that the only packets on the link are the test's own.
func pair(t *testing.T) (testNS, testNS) {
	t.Helper()
	ns1, ns2 := testNS{testns.New(t)}, testNS{testns.New(t)}
	h1, err := netlink.NewHandleAt(ns1.h)
	if err != nil {
		t.Fatal(err)
	}
	defer h1.Close()
	h2, err := netlink.NewHandleAt(ns2.h)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	for _, ns := range []testNS{ns1, ns2} {
		if err := ns.Do(func() error {
			return os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0)
		}); err != nil {
			t.Fatal(err)
		}
	}
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: "a", MTU: 1500, HardwareAddr: pt.MACA},
		PeerName:  "b", PeerHardwareAddr: pt.MACB, PeerNamespace: netlink.NsFd(ns2.h),
	}
	if err := h1.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	for _, side := range []struct {
		h          *netlink.Handle
		name, addr string
		peer       string
		peerMAC    net.HardwareAddr
	}{{h1, "a", addrA, addrB, pt.MACB}, {h2, "b", addrB, addrA, pt.MACA}} {
		l, err := side.h.LinkByName(side.name)
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := netlink.ParseAddr(side.addr + "/24")
		if err := side.h.AddrAdd(l, addr); err != nil {
			t.Fatal(err)
		}
		if err := side.h.NeighAdd(&netlink.Neigh{LinkIndex: l.Attrs().Index, IP: net.ParseIP(side.peer),
			HardwareAddr: side.peerMAC, State: netlink.NUD_PERMANENT}); err != nil {
			t.Fatal(err)
		}
		if err := side.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		lo, err := side.h.LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		if err := side.h.LinkSetUp(lo); err != nil {
			t.Fatal(err)
		}
	}
	for _, side := range []struct {
		h    *netlink.Handle
		name string
	}{{h1, "a"}, {h2, "b"}} {
		waitTransmitting(t, side.h, side.name)
	}
	return ns1, ns2
}

// waitTransmitting waits until the kernel has given the link its real
// queueing discipline. Until linkwatch does so, some time after the
// carrier comes up, the device has the noop qdisc, which drops every
// packet silently. The deadline only keeps a stuck kernel from hanging
// the test.
func waitTransmitting(t *testing.T, h *netlink.Handle, name string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		qdiscs, err := h.QdiscList(l)
		if err != nil {
			t.Fatal(err)
		}
		if len(qdiscs) > 0 && qdiscs[0].Type() != "noop" {
			return
		}
	}
	t.Fatalf("%s never left the noop qdisc", name)
}

// listen opens UDP ports in ns so that datagrams are taken, not answered
// with ICMP port unreachable.
func listen(t *testing.T, ns testNS, ports ...int) {
	t.Helper()
	for _, port := range ports {
		var c *net.UDPConn
		if err := ns.Do(func() (err error) {
			c, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
}

// send sends one datagram per payload from ns to addr:port.
func send(t *testing.T, ns testNS, addr string, port int, payloads ...string) {
	t.Helper()
	if err := ns.Do(func() error {
		c, err := net.Dial("udp4", net.JoinHostPort(addr, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		defer c.Close()
		for _, p := range payloads {
			if _, err := c.Write([]byte(p)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// collect runs the capture until count packets. The deadline only keeps a
// broken capture from hanging the test; it never decides a result.
func collect(t *testing.T, c *Capture, count int) []Packet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []Packet
	if err := c.Run(ctx, count, func(p Packet) error { got = append(got, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != count {
		t.Fatalf("captured %d packets before giving up, want %d", len(got), count)
	}
	return got
}

func udpPayload(t *testing.T, p Packet, link filter.LinkType) string {
	t.Helper()
	f := Decode(p.Data, link)
	if len(f.IP) != 1 || f.IP[0].Proto != 17 || !f.IP[0].Transport {
		t.Fatalf("not a UDP packet: %s", f.String(true))
	}
	return string(p.Data[len(p.Data)-f.IP[0].Payload:])
}

func open(t *testing.T, expr string, sources ...Source) *Capture {
	t.Helper()
	c, err := Open(sources, expr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCaptureBothEndsMergedInTimeOrder(t *testing.T) {
	ns1, ns2 := pair(t)
	listen(t, ns2, 5001)
	c := open(t, "udp", Source{"n1", "a", ns1}, Source{"n2", "b", ns2})
	if got := fmt.Sprint(c.Interfaces()); got != "[{n1:a 1} {n2:b 1}]" {
		t.Errorf("interfaces %s", got)
	}
	send(t, ns1, addrB, 5001, "one", "two", "three")
	got := collect(t, c, 6)

	seen := map[string][]Packet{}
	for i, p := range got {
		if i > 0 && p.Time.Before(got[i-1].Time) {
			t.Errorf("packet %d (%v) handed on before packet %d (%v)", i, p.Time, i-1, got[i-1].Time)
		}
		payload := udpPayload(t, p, filter.Ethernet)
		seen[payload] = append(seen[payload], p)
	}
	for _, payload := range []string{"one", "two", "three"} {
		ps := seen[payload]
		if len(ps) != 2 || ps[0].Iface != 0 || ps[0].Dir != Out || ps[1].Iface != 1 || ps[1].Dir != In {
			t.Errorf("%q: seen as %v, want out on n1:a then in on n2:b", payload, ps)
		}
		for _, p := range ps {
			if p.Length != len(p.Data) || p.Length != 14+20+8+len(payload) {
				t.Errorf("%q: captured %d of %d bytes", payload, len(p.Data), p.Length)
			}
		}
	}
}

func TestCaptureSeesOnlyItsInterfaceAndFilter(t *testing.T) {
	ns1, ns2 := pair(t)
	listen(t, ns2, 5001, 5002)
	listen(t, ns1, 5001)
	for _, c := range []struct {
		expr string
		want []string
	}{
		// Loopback traffic in the same namespace must not leak into a
		// socket bound to a.
		{"", []string{"first", "other"}},
		{"udp dst port 5001", []string{"first", "last"}},
		{"udp port 5002", []string{"other", "other"}},
	} {
		cap := open(t, c.expr, Source{"n1", "a", ns1})
		send(t, ns1, "127.0.0.1", 5001, "loopback")
		send(t, ns1, addrB, 5001, "first")
		send(t, ns1, addrB, 5002, "other")
		send(t, ns1, "127.0.0.1", 5001, "loopback")
		send(t, ns1, addrB, 5002, "other")
		send(t, ns1, addrB, 5001, "last")
		var got []string
		for _, p := range collect(t, cap, 2) {
			got = append(got, udpPayload(t, p, filter.Ethernet))
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%q: captured %v, want %v", c.expr, got, c.want)
		}
	}
}

func TestFarJumpingFilterRunsInTheKernel(t *testing.T) {
	ns1, ns2 := pair(t)
	listen(t, ns2, 5001)
	var hosts []string
	for i := 1; i <= 100; i++ {
		hosts = append(hosts, fmt.Sprintf("host 10.8.0.%d", i))
	}
	// The first host's match jumps hundreds of instructions to accept.
	expr := "(" + strings.Join(hosts, " or ") + " or host " + addrA + ") and udp"
	c := open(t, expr, Source{"n1", "a", ns1})
	send(t, ns1, addrB, 5001, "through")
	if got := udpPayload(t, collect(t, c, 1)[0], filter.Ethernet); got != "through" {
		t.Errorf("captured %q", got)
	}
}

func TestFramesLargerThanTheMTUAreWhole(t *testing.T) {
	ns1, ns2 := pair(t)
	var ln net.Listener
	if err := ns2.Do(func() (err error) { ln, err = net.Listen("tcp4", addrB+":5003"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, conn)
			conn.Close()
		}
	}()
	c := open(t, "tcp and src host "+addrA, Source{"n1", "a", ns1})
	var conn net.Conn
	if err := ns1.Do(func() (err error) { conn, err = net.Dial("tcp4", addrB+":5003"); return err }); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// TSO on veth hands packet sockets unsegmented GSO frames: one write
	// of a full initial window is one frame of about 10 MSS.
	go conn.Write(make([]byte, 256<<10))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var big *Packet
	errFound := errors.New("found")
	err := c.Run(ctx, 0, func(p Packet) error {
		if p.Length > 1514 {
			big = &p
			return errFound
		}
		return nil
	})
	if big == nil {
		t.Fatalf("no frame larger than the MTU (err %v)", err)
	}
	if len(big.Data) != big.Length {
		t.Errorf("a %d-byte frame was cut to %d", big.Length, len(big.Data))
	}
}

func TestCancelEndsAnUnlimitedRun(t *testing.T) {
	ns1, ns2 := pair(t)
	listen(t, ns2, 5001)
	c := open(t, "", Source{"n1", "a", ns1})
	send(t, ns1, addrB, 5001, "x")
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := c.Run(ctx, 0, func(Packet) error { n++; cancel(); return nil })
	if err != nil || n != 1 {
		t.Errorf("Run = %v after %d packets, want nil after 1", err, n)
	}
}

func TestCaptureToFiles(t *testing.T) {
	ns1, ns2 := pair(t)
	listen(t, ns2, 5001)
	c := open(t, "udp", Source{"n1", "a", ns1}, Source{"n2", "b", ns2})
	send(t, ns1, addrB, 5001, "filed")
	var buf bytes.Buffer
	w, err := NewWriter(&buf, c.Interfaces())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range collect(t, c, 2) {
		if err := w.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	f := readPcapng(t, buf.Bytes())
	if fmt.Sprint(f.ifaces) != "[{n1:a 1} {n2:b 1}]" || len(f.packets) != 2 {
		t.Fatalf("file has interfaces %v and %d packets", f.ifaces, len(f.packets))
	}
	if p := f.packets[0]; p.iface != 0 || p.flags != 2 || !bytes.HasSuffix(p.data, []byte("filed")) {
		t.Errorf("first packet: interface %d flags %d", p.iface, p.flags)
	}
	if p := f.packets[1]; p.iface != 1 || p.flags != 1|1<<2 || !bytes.HasSuffix(p.data, []byte("filed")) {
		t.Errorf("second packet: interface %d flags %d", p.iface, p.flags)
	}
}

func TestOpenErrors(t *testing.T) {
	ns1, _ := pair(t)
	_, err := Open([]Source{{"n1", "nope", ns1}}, "")
	if err == nil || !strings.Contains(err.Error(), "n1:nope") {
		t.Errorf("unknown interface: err = %v", err)
	}
	var se *filter.SyntaxError
	if _, err := Open([]Source{{"n1", "a", ns1}}, "host"); !errors.As(err, &se) {
		t.Errorf("bad filter: err = %v, want a SyntaxError", err)
	}
}

// The kernel turns packet stamping on some time after the first socket
// asks for it. Packets sent once Open has returned must carry the time
// they passed the interface, not the time they were read; each round
// closes its capture so that stamping may be off again for the next.
func TestPacketsRightAfterOpenCarryTheTimeTheyPassed(t *testing.T) {
	if stampingOn(0) {
		t.Skip("packet stamping is on already (another socket on this machine asked for it): the first capture's race cannot happen")
	}
	ns1, ns2 := pair(t)
	listen(t, ns2, 5001)
	for round := range 10 {
		c := open(t, "udp", Source{"n1", "a", ns1})
		before := time.Now()
		send(t, ns1, addrB, 5001, "now")
		after := time.Now()
		time.Sleep(20 * time.Millisecond) // a stamp taken at reading would be after this
		p := collect(t, c, 1)[0]
		if p.Time.Before(before.Round(0)) || p.Time.After(after.Round(0)) {
			t.Fatalf("round %d: stamped %v, sent between %v and %v", round, p.Time, before.Round(0), after.Round(0))
		}
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStampOfAnUnstampedPacket(t *testing.T) {
	if _, ok := stamp(nil); ok {
		t.Error("no control message gave a stamp")
	}
	zero := make([]byte, unix.CmsgSpace(3*16))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&zero[0]))
	h.Level, h.Type = unix.SOL_SOCKET, unix.SCM_TIMESTAMPING
	h.SetLen(unix.CmsgLen(3 * 16))
	if _, ok := stamp(zero); ok {
		t.Error("an all-zero scm_timestamping gave a stamp")
	}
}

// An interface down when the capture opens, or going down during it,
// is said, and the capture goes on: on the other interfaces, and on it
// once it is up again.
func TestInterfaceDownIsSaidAndTheCaptureGoesOn(t *testing.T) {
	ns1, ns2 := pair(t)
	listen(t, ns1, 5001)
	listen(t, ns2, 5001)
	h1, err := netlink.NewHandleAt(ns1.h)
	if err != nil {
		t.Fatal(err)
	}
	defer h1.Close()
	a, err := h1.LinkByName("a")
	if err != nil {
		t.Fatal(err)
	}
	if err := h1.LinkSetDown(a); err != nil {
		t.Fatal(err)
	}
	c := open(t, "udp", Source{"n1", "a", ns1}, Source{"n2", "b", ns2})
	down := make(chan int, 4)
	c.OnDown(func(iface int) { down <- iface })
	got := make(chan Packet, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx, 0, func(p Packet) error { got <- p; return nil }) }()
	expectDown := func() {
		t.Helper()
		select {
		case i := <-down:
			if i != 0 {
				t.Errorf("interface %d said down, want 0", i)
			}
		case err := <-errc:
			t.Fatalf("the capture ended: %v", err)
		case <-ctx.Done():
			t.Fatal("the interface down was never said")
		}
	}
	expectDown()
	if err := h1.LinkSetUp(a); err != nil {
		t.Fatal(err)
	}
	waitTransmitting(t, h1, "a")
	send(t, ns1, addrB, 5001, "after")
	for _, want := range []int{0, 1} {
		select {
		case p := <-got:
			if p.Iface != want || udpPayload(t, p, filter.Ethernet) != "after" {
				t.Errorf("captured %q on %d, want it on %d", p.Data, p.Iface, want)
			}
		case err := <-errc:
			t.Fatalf("the capture ended: %v", err)
		case <-ctx.Done():
			t.Fatal("nothing captured after the interface came up")
		}
	}
	if err := h1.LinkSetDown(a); err != nil {
		t.Fatal(err)
	}
	expectDown()
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
