package netconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/dsrlab/dsrlab/internal/testns"
)

// newNamespace gives a test its own empty network namespace, released when
// the test ends (the namespace dies with its last file descriptor).
func newNamespace(t *testing.T, name string) *Namespace {
	t.Helper()
	// Duplicate the handle: the Namespace owns (and closes) its own.
	handle, err := netns.GetFromPath(fmt.Sprintf("/proc/self/fd/%d", int(testns.New(t))))
	if err != nil {
		t.Fatal(err)
	}
	ns, err := fromHandle(handle, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	return ns
}

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
)

func vethPair(t *testing.T, mtu int) (*Namespace, *Namespace) {
	t.Helper()
	a, b := newNamespace(t, "a"), newNamespace(t, "b")
	if err := CreateVeth(Endpoint{a, "eth0", macA}, Endpoint{b, "eth2", macB}, mtu); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestCreateVethPutsEachEndInItsNamespace(t *testing.T) {
	a, b := vethPair(t, 3000)
	for _, c := range []struct {
		ns   *Namespace
		name string
		mac  net.HardwareAddr
	}{{a, "eth0", macA}, {b, "eth2", macB}} {
		l, err := c.ns.h.LinkByName(c.name)
		if err != nil {
			t.Fatalf("%s: %v", c.ns.name, err)
		}
		if l.Type() != "veth" || l.Attrs().MTU != 3000 || !bytes.Equal(l.Attrs().HardwareAddr, c.mac) {
			t.Errorf("%s:%s = type %s mtu %d mac %s, want veth 3000 %s", c.ns.name, c.name, l.Type(), l.Attrs().MTU, l.Attrs().HardwareAddr, c.mac)
		}
	}
	host, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range host {
		if bytes.Equal(l.Attrs().HardwareAddr, macA) || bytes.Equal(l.Attrs().HardwareAddr, macB) {
			t.Errorf("veth end %s appeared in the host namespace", l.Attrs().Name)
		}
	}
}

func TestCreateVethFailureLeavesNothing(t *testing.T) {
	a, b := vethPair(t, 1500)
	// eth2 is taken in b: the second pair must fail as a whole.
	err := CreateVeth(Endpoint{a, "eth1", nil}, Endpoint{b, "eth2", nil}, 1500)
	if err == nil {
		t.Fatal("second veth with a clashing name was created")
	}
	if _, err := a.h.LinkByName("eth1"); err == nil {
		t.Error("failed CreateVeth left eth1 behind")
	}
}

func TestAddressingRoutesAndTraffic(t *testing.T) {
	a, b := vethPair(t, 1500)
	if err := a.ConfigureInterface("eth0", netip.MustParsePrefix("10.111.220.11/24")); err != nil {
		t.Fatal(err)
	}
	if err := b.ConfigureInterface("eth2", netip.MustParsePrefix("10.111.220.12/24")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ns   *Namespace
		name string
	}{{a, "eth0"}, {b, "eth2"}} {
		on, err := c.ns.TxChecksumOn(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if on {
			t.Errorf("%s:%s: tx checksum offload still on", c.ns.name, c.name)
		}
	}
	gw := netip.MustParseAddr("10.111.220.12")
	if err := a.SetRoute(netip.Prefix{}, gw); err != nil {
		t.Fatal(err)
	}
	if err := a.SetRoute(netip.MustParsePrefix("192.168.10.1/32"), gw); err != nil {
		t.Fatal(err)
	}
	routes, err := a.h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var haveDefault, haveHost bool
	for _, r := range routes {
		if r.Gw.Equal(gw.AsSlice()) {
			haveDefault = haveDefault || r.Dst == nil || r.Dst.IP.IsUnspecified()
			haveHost = haveHost || (r.Dst != nil && r.Dst.String() == "192.168.10.1/32")
		}
	}
	if !haveDefault || !haveHost {
		t.Errorf("routes = %v, want default and 192.168.10.1/32 via %s", routes, gw)
	}

	// The VIP lives on b's lo; a reaches it through its routes.
	vip := netip.MustParseAddr("192.168.10.1")
	if err := b.AddLoopbackAddress(vip); err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := b.Do(func() (err error) { ln, err = net.Listen("tcp", "192.168.10.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()
	c, err := a.Dial("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through the veth: %q, %v", buf, err)
	}
	if got := c.LocalAddr().(*net.TCPAddr).IP.String(); got != "10.111.220.11" {
		t.Errorf("connection left from %s, want a's address", got)
	}
}

func TestIPIPDeviceOrNotSupported(t *testing.T) {
	ns := newNamespace(t, "real")
	err := ns.AddIPIPDevice("ipip0")
	switch {
	case err == nil:
		l, err := ns.h.LinkByName("ipip0")
		if err != nil || l.Type() != "ipip" || l.Attrs().Flags&net.FlagUp == 0 {
			t.Fatalf("ipip0 = %v, %v; want an ipip device, up", l, err)
		}
		t.Log("kernel has ipip: created an external ipip device")
	case errors.Is(err, ErrNotSupported):
		t.Logf("kernel has no ipip (the XDP decap path is used): %v", err)
	default:
		t.Fatalf("AddIPIPDevice: %v", err)
	}
}

func TestLinkState(t *testing.T) {
	a, b := vethPair(t, 1500)
	state := func(ns *Namespace, name string) string {
		t.Helper()
		s, err := ns.LinkState(name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	setUp := func(ns *Namespace, name string, up bool) {
		t.Helper()
		l, err := ns.h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		set := ns.h.LinkSetDown
		if up {
			set = ns.h.LinkSetUp
		}
		if err := set(l); err != nil {
			t.Fatal(err)
		}
	}
	if s := state(a, "eth1"); s != LinkMissing {
		t.Errorf("an interface that does not exist is %q", s)
	}
	// CreateVeth leaves both ends down.
	if s := state(a, "eth0"); s != LinkDown {
		t.Errorf("a new veth end is %q", s)
	}
	setUp(a, "eth0", true)
	setUp(b, "eth2", true)
	if s := state(a, "eth0"); s != "" {
		t.Errorf("a veth end with its peer up is %q", s)
	}
	setUp(b, "eth2", false)
	if s, peer := state(a, "eth0"), state(b, "eth2"); s != LinkNoCarrier || peer != LinkDown {
		t.Errorf("with the peer set down: %q, and the peer %q", s, peer)
	}
	setUp(b, "eth2", true)
	if s := state(a, "eth0"); s != "" {
		t.Errorf("with the peer up again: %q", s)
	}
}

// Deleting makes sure an interface is gone: one already gone (as a veth
// end the kernel removes with its peer's namespace) is no error.
func TestDeleteLinkIsIdempotent(t *testing.T) {
	a, b := vethPair(t, 1500)
	if err := a.DeleteLink("eth0"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ns   *Namespace
		name string
	}{{a, "eth0"}, {b, "eth2"}} {
		if ok, err := c.ns.LinkExists(c.name); err != nil || ok {
			t.Errorf("%s:%s exists %v (%v) after the delete", c.ns.name, c.name, ok, err)
		}
		if err := c.ns.DeleteLink(c.name); err != nil {
			t.Errorf("deleting %s:%s again: %v", c.ns.name, c.name, err)
		}
	}
}

func TestInterruptedDumpIsRunAgain(t *testing.T) {
	calls := 0
	list := func(interrupted int) func() ([]int, error) {
		calls = 0
		return func() ([]int, error) {
			calls++
			if calls <= interrupted {
				return []int{calls}, netlink.ErrDumpInterrupted
			}
			return []int{calls}, nil
		}
	}
	if out, err := dump(list(2)); err != nil || calls != 3 || out[0] != 3 {
		t.Errorf("two interruptions: %v, %v after %d calls; want the third answer", out, err, calls)
	}
	if _, err := dump(list(dumpAttempts)); !errors.Is(err, netlink.ErrDumpInterrupted) || calls != dumpAttempts {
		t.Errorf("always interrupted: %v after %d calls; want the error after %d", err, calls, dumpAttempts)
	}
}
