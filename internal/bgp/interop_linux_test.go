package bgp

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
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
// speakers; its BIRD and FRR files are run here, as written, as the router
// of two speakers, and the kernel's routes must be what a tier needs.
func TestBIRDRouterLearnsFromSpeakers(t *testing.T) {
	bird, err := exec.LookPath("bird")
	if err != nil {
		t.Skip("needs BIRD 2 (Debian's bird2; scripts/install-deps.sh --test installs it)")
	}
	tr := newTier(t, 2)
	dir := t.TempDir()
	conf := writeDocBlock(t, dir, "bird")
	startDaemon(t, tr.router, bird, "-f", "-c", conf, "-s", filepath.Join(dir, "bird.ctl"))
	checkForeignRouter(t, tr)
}

func TestFRRRouterLearnsFromSpeakers(t *testing.T) {
	const zebra, bgpd = "/usr/lib/frr/zebra", "/usr/lib/frr/bgpd"
	if _, err := os.Stat(bgpd); err != nil {
		t.Skip("needs FRR (Debian's frr; scripts/install-deps.sh --test installs it)")
	}
	tr := newTier(t, 2)
	// Not t.TempDir: FRR's user must reach it.
	dir, err := os.MkdirTemp("", "dsrlab-frr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := writeDocBlock(t, dir, "frr")
	// The daemons run as FRR's user, as packaged, and keep every file in
	// dir; no vty port.
	frr, err := user.Lookup("frr")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(frr.Uid)
	gid, _ := strconv.Atoi(frr.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	common := []string{"-P", "0", "-z", filepath.Join(dir, "zserv.api"), "--vty_socket", dir, "--log", "stdout"}
	startDaemon(t, tr.router, zebra, append(common, "-i", filepath.Join(dir, "zebra.pid"))...)
	startDaemon(t, tr.router, bgpd, append(common, "-i", filepath.Join(dir, "bgpd.pid"), "-f", conf)...)
	checkForeignRouter(t, tr)
}

// checkForeignRouter runs two katran speakers beside a router that is
// not dsrlab's: it installs the VIPs over both, follows a katran's XDP
// program, and hears a clean stop.
func checkForeignRouter(t *testing.T, tr *tier) {
	t.Helper()
	k1, k2 := tr.katrans[0], tr.katrans[1]
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

func writeDocBlock(t *testing.T, dir, lang string) string {
	t.Helper()
	path := filepath.Join(dir, lang+".conf")
	if err := os.WriteFile(path, []byte(docBlock(t, "../../docs/BGP.md", lang)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startDaemon runs a program in ns until the test ends, and shows what it
// printed if the test fails. out is read only after the program has ended.
func startDaemon(t *testing.T, ns *netconf.Namespace, bin string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := ns.Do(cmd.Start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Asked to stop, FRR removes its crash-log directory in /var/tmp.
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s printed:\n%s", filepath.Base(bin), out.String())
		}
	})
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
