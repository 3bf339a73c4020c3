//go:build linux

package bpf

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
)

// A second Balancer found through the program alone sees and changes the
// same maps, as a CLI run after the one that loaded the program would.
func TestOpenBalancer(t *testing.T) {
	loaded := newBalancerWith(t, Options{LRUSize: 4096})
	if err := loaded.Configure(katranAddr, routerMAC, labPathMTU); err != nil {
		t.Fatal(err)
	}
	setVIP(t, loaded, tcpVIP, []Real{{Addr: realAt(0), Weight: 3}, {Addr: realAt(1), Weight: 0}})
	setVIP(t, loaded, udpVIP, equal(realAddr))
	runXDP(t, loaded.Program(), udpFlow.frame())

	info, err := loaded.Program().Info()
	if err != nil {
		t.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		t.Skip("kernel does not report program IDs")
	}
	opened, err := OpenBalancerByID(id)
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()

	want, err := loaded.VIPs()
	if err != nil {
		t.Fatal(err)
	}
	got, err := opened.VIPs()
	if err != nil {
		t.Fatal(err)
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("opened VIPs() = %v, loaded says %v", got, want)
	}

	// Changes through the opened Balancer reach the loaded program.
	setVIP(t, opened, tcpVIP, equal(otherReal))
	if r := encapsulatedTo(t, loaded, tcpFlow); r != otherReal {
		t.Errorf("after SetVIP on the opened balancer: sent to %s, want %s", r, otherReal)
	}
	if err := opened.DeleteVIP(udpVIP); err != nil {
		t.Fatal(err)
	}
	if got, _ := runXDP(t, loaded.Program(), udpFlow.frame()); got != xdpPass {
		t.Errorf("after DeleteVIP on the opened balancer: %s, want XDP_PASS", got)
	}

	sl, err := loaded.Stats()
	if err != nil {
		t.Fatal(err)
	}
	so, err := opened.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if so.Encapsulated != 2 || so.Passed != 1 || so.Encapsulated != sl.Encapsulated || so.Reals[otherReal].Packets != 1 {
		t.Errorf("opened stats %+v, loaded stats %+v", so, sl)
	}
	if got := opened.objs.LruFlows.MaxEntries(); got != 4096 {
		t.Errorf("opened LRU holds %d flows, loaded with 4096", got)
	}
}

func TestOpenBalancerRejectsOtherPrograms(t *testing.T) {
	requireBPF(t)
	pass, err := LoadPass()
	if err != nil {
		skipIfUnsupported(t, err)
		t.Fatal(err)
	}
	defer pass.Close()
	if b, err := OpenBalancer(pass); err == nil {
		b.Close()
		t.Error("OpenBalancer(xdp_pass): no error")
	}
}

// A balancer whose maps are laid out otherwise (as another version of
// dsrlab would have loaded it: here reals with a longer value) is refused
// with ErrOtherBuild, never read with this build's layout.
func TestOpenBalancerOfAnotherBuild(t *testing.T) {
	spec, err := loadBalancer()
	if err != nil {
		t.Fatal(err)
	}
	reals := spec.Maps[balancerMapReals]
	reals.ValueSize += 8
	reals.Key, reals.Value = nil, nil
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	_, err = OpenBalancer(coll.Programs[balancerProgXdpBalancer])
	if !errors.Is(err, ErrOtherBuild) {
		t.Errorf("open: %v, want ErrOtherBuild", err)
	}
}
