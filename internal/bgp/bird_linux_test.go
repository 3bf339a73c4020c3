package bgp

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dsrlab/dsrlab/internal/netconf"
)

// docs/BGP.md tells users how to peer their own router with the katrans'
// speakers; its BIRD file is run here, as written, as the router of two
// speakers, and the kernel's routes are what a tier needs.
func TestBIRDRouterLearnsFromSpeakers(t *testing.T) {
	birdBin, err := exec.LookPath("bird")
	if err != nil {
		t.Skip("needs BIRD 2 (Debian's bird2; scripts/install-deps.sh --test installs it)")
	}
	tr := newTier(t, 2)
	k1, k2 := tr.katrans[0], tr.katrans[1]
	dir := t.TempDir()
	conf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(docBlock(t, "../../docs/BGP.md", "bird")), 0o644); err != nil {
		t.Fatal(err)
	}
	var birdOut bytes.Buffer
	bird := exec.Command(birdBin, "-f", "-c", conf, "-s", filepath.Join(dir, "bird.ctl"))
	bird.Stdout, bird.Stderr = &birdOut, &birdOut
	if err := tr.router.Do(bird.Start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		bird.Process.Kill()
		bird.Wait()
		if t.Failed() {
			t.Logf("bird printed:\n%s", birdOut.String())
		}
	})

	tr.attach(t, k1)
	tr.attach(t, k2)
	startSpeaker(t, k1.ns, k1.config())
	katran2 := startSpeaker(t, k2.ns, k2.config())
	waitGateways(t, tr.router, vip4, k1.addr4, k2.addr4)
	waitGateways(t, tr.router, vip6, k1.addr6, k2.addr6)

	detach(t, k1)
	waitGateways(t, tr.router, vip4, k2.addr4)
	tr.attach(t, k1)
	waitGateways(t, tr.router, vip4, k1.addr4, k2.addr4)

	katran2.signal(t, syscall.SIGTERM)
	if err := katran2.waitExit(t); err != nil {
		t.Fatalf("katran2 after SIGTERM: %v", err)
	}
	waitGateways(t, tr.router, vip4, k1.addr4)
	waitGateways(t, tr.router, vip6, k1.addr6)
}

// docBlock is the text of the first fenced block of a language in a
// Markdown file.
func docBlock(t *testing.T, path, lang string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "```"+lang+"\n")
	if !ok {
		t.Fatalf("%s: no ```%s block", path, lang)
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("%s: ```%s block not closed", path, lang)
	}
	return block
}

// waitGateways waits until the kernel routes dst over exactly these
// gateways.
func waitGateways(t *testing.T, ns *netconf.Namespace, dst netip.Prefix, want ...netip.Addr) {
	t.Helper()
	h, err := netlink.NewHandleAt(netns.NsHandle(ns.FD()))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	slices.SortFunc(want, netip.Addr.Compare)
	family := unix.AF_INET
	if dst.Addr().Is6() {
		family = unix.AF_INET6
	}
	filter := &netlink.Route{Dst: &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), dst.Addr().BitLen())}}
	var got []netip.Addr
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) {
		routes, err := h.RouteListFiltered(family, filter, netlink.RT_FILTER_DST)
		if err != nil {
			t.Fatal(err)
		}
		got = nil
		for _, r := range routes {
			for _, gw := range append([]net.IP{r.Gw}, nextHopGateways(r)...) {
				if a, ok := netip.AddrFromSlice(gw); ok {
					got = append(got, a.Unmap())
				}
			}
		}
		slices.SortFunc(got, netip.Addr.Compare)
		if slices.Equal(got, want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("route to %s is via %v, want %v", dst, got, want)
}

func nextHopGateways(r netlink.Route) []net.IP {
	var gws []net.IP
	for _, nh := range r.MultiPath {
		gws = append(gws, nh.Gw)
	}
	return gws
}
