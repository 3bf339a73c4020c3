package netconf

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// vxlanSide is one simulated host: its namespace holding the underlay, and
// a container namespace on it that receives the tunnel's end.
type vxlanSide struct {
	host, box *Namespace
	underlay  netip.Prefix
	inner     netip.Prefix
	mac       net.HardwareAddr
}

// twoHosts joins two "host" namespaces by an underlay veth (MTU 1500) and
// gives each a container namespace with no route to the underlay: traffic
// between the containers can only cross through the tunnel's socket on the
// hosts.
func twoHosts(t *testing.T, a, b netip.Prefix) (vxlanSide, vxlanSide) {
	t.Helper()
	l := vxlanSide{host: newNamespace(t, "host1"), box: newNamespace(t, "box1"), underlay: a,
		inner: netip.MustParsePrefix("10.99.0.1/24"), mac: net.HardwareAddr{0x02, 0, 0, 0, 0x99, 1}}
	r := vxlanSide{host: newNamespace(t, "host2"), box: newNamespace(t, "box2"), underlay: b,
		inner: netip.MustParsePrefix("10.99.0.2/24"), mac: net.HardwareAddr{0x02, 0, 0, 0, 0x99, 2}}
	if err := CreateVeth(Endpoint{l.host, "ul0", nil}, Endpoint{r.host, "ul0", nil}, 1500); err != nil {
		t.Fatal(err)
	}
	for _, s := range []vxlanSide{l, r} {
		if err := s.host.ConfigureInterface("ul0", s.underlay); err != nil {
			t.Fatal(err)
		}
	}
	return l, r
}

// tunnel puts one end of a VNI on each side, as a multi-host link does.
func tunnel(t *testing.T, l, r vxlanSide, vni uint32, port, mtu int) {
	t.Helper()
	for _, c := range []struct{ from, to vxlanSide }{{l, r}, {r, l}} {
		v := VXLAN{VNI: vni, Local: c.from.underlay.Addr(), Remote: c.to.underlay.Addr(), Port: port, MTU: mtu}
		if err := CreateVXLAN(c.from.host, Endpoint{c.from.box, "eth1", c.from.mac}, v); err != nil {
			t.Fatal(err)
		}
		if err := c.from.box.ConfigureInterface("eth1", c.from.inner); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVXLANCarriesUDPBetweenContainers(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b netip.Prefix
		// The underlay's 1500 minus the outer Ethernet, IP, UDP and
		// VXLAN headers: a frame one byte larger is dropped on the way.
		mtu int
	}{
		{"ipv4 underlay", netip.MustParsePrefix("172.31.255.1/24"), netip.MustParsePrefix("172.31.255.2/24"), 1450},
		{"ipv6 underlay", netip.MustParsePrefix("fd00:dead::1/64"), netip.MustParsePrefix("fd00:dead::2/64"), 1430},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, r := twoHosts(t, tc.a, tc.b)
			mtu := tc.mtu
			tunnel(t, l, r, 4242, 14789, mtu)

			var srv net.PacketConn
			if err := r.box.Do(func() (err error) {
				srv, err = net.ListenPacket("udp4", netip.AddrPortFrom(r.inner.Addr(), 0).String())
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			c, err := l.box.Dial("udp4", srv.LocalAddr().String(), time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// A datagram filling the tunnel's MTU must cross whole.
			sent := bytes.Repeat([]byte{0xa5}, mtu-28)
			if _, err := c.Write(sent); err != nil {
				t.Fatal(err)
			}
			// The first datagram may wait for ARP across the tunnel,
			// which the deadline covers; a lost one is a failure.
			srv.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 2*mtu)
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				t.Fatalf("datagram through the tunnel: %v", err)
			}
			if !bytes.Equal(buf[:n], sent) {
				t.Errorf("received %d bytes, want the %d sent", n, len(sent))
			}
			if got := from.(*net.UDPAddr).IP.String(); got != l.inner.Addr().String() {
				t.Errorf("datagram came from %s, want %s", got, l.inner.Addr())
			}
		})
	}
}

func TestCreateVXLANAppliesNameMACAndMTU(t *testing.T) {
	l, r := twoHosts(t, netip.MustParsePrefix("172.31.255.1/24"), netip.MustParsePrefix("172.31.255.2/24"))
	tunnel(t, l, r, 7, 4789, 1400)
	link, err := l.box.h.LinkByName("eth1")
	if err != nil {
		t.Fatal(err)
	}
	vx, ok := link.(*netlink.Vxlan)
	if !ok {
		t.Fatalf("eth1 is a %s, want vxlan", link.Type())
	}
	if vx.MTU != 1400 || !bytes.Equal(vx.HardwareAddr, l.mac) || vx.Flags&net.FlagUp == 0 {
		t.Errorf("eth1 = mtu %d mac %s flags %s, want 1400 %s up", vx.MTU, vx.HardwareAddr, vx.Flags, l.mac)
	}
	if vx.VxlanId != 7 || vx.Port != 4789 || vx.Learning ||
		!vx.SrcAddr.Equal(net.ParseIP("172.31.255.1")) || !vx.Group.Equal(net.ParseIP("172.31.255.2")) {
		t.Errorf("eth1 = vni %d port %d learning %t local %s remote %s, want 7 4789 false 172.31.255.1 172.31.255.2",
			vx.VxlanId, vx.Port, vx.Learning, vx.SrcAddr, vx.Group)
	}
	on, err := l.box.TxChecksumOn("eth1")
	if err != nil {
		t.Fatal(err)
	}
	if on {
		t.Error("eth1: tx checksum offload still on")
	}
	assertNoVXLAN(t, l.host)
}

func TestCreateVXLANFailureLeavesNothing(t *testing.T) {
	l, r := twoHosts(t, netip.MustParsePrefix("172.31.255.1/24"), netip.MustParsePrefix("172.31.255.2/24"))
	good := VXLAN{VNI: 9, Local: l.underlay.Addr(), Remote: r.underlay.Addr(), Port: 4789, MTU: 1450}
	if err := CreateVeth(Endpoint{l.box, "taken", nil}, Endpoint{l.box, "taken-peer", nil}, 1500); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		ifname string
		mod    func(*VXLAN)
	}{
		{"name taken in the container", "taken", func(*VXLAN) {}},
		{"vni zero", "eth1", func(v *VXLAN) { v.VNI = 0 }},
		{"vni over 24 bits", "eth1", func(v *VXLAN) { v.VNI = 1 << 24 }},
		{"no local address", "eth1", func(v *VXLAN) { v.Local = netip.Addr{} }},
		{"mixed families", "eth1", func(v *VXLAN) { v.Remote = netip.MustParseAddr("fd00::2") }},
		{"multicast remote", "eth1", func(v *VXLAN) { v.Remote = netip.MustParseAddr("239.1.1.1") }},
		{"port zero", "eth1", func(v *VXLAN) { v.Port = 0 }},
		{"port too large", "eth1", func(v *VXLAN) { v.Port = 65536 }},
		{"no mtu", "eth1", func(v *VXLAN) { v.MTU = 0 }},
		{"mtu too large for the kernel", "eth1", func(v *VXLAN) { v.MTU = 70000 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := good
			tc.mod(&v)
			if err := CreateVXLAN(l.host, Endpoint{l.box, tc.ifname, nil}, v); err == nil {
				t.Fatal("CreateVXLAN succeeded")
			}
			assertNoVXLAN(t, l.host)
			assertNoVXLAN(t, l.box)
		})
	}
	// The clash must not have cost the container the interface it had.
	if ok, err := l.box.LinkExists("taken"); err != nil || !ok {
		t.Errorf("the container's own interface is gone after the clash: %v", err)
	}
}

func assertNoVXLAN(t *testing.T, ns *Namespace) {
	t.Helper()
	links, err := ns.h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Type() == "vxlan" {
			t.Errorf("%s: stray vxlan device %s", ns.name, l.Attrs().Name)
		}
	}
}

func TestCurrentIsOwnNamespace(t *testing.T) {
	cur, err := Current("self")
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	self, err := netns.GetFromPath("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	if !cur.ns.Equal(self) {
		t.Errorf("Current opened %s, the process is in %s", cur.ns, self)
	}
}
