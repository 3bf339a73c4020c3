//go:build linux

package bpf

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dsrlab/dsrlab/internal/testns"
)

func newTracer(t *testing.T) *Tracer {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load tracing programs")
	}
	tr, err := LoadTracer()
	if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EPERM) {
		t.Skipf("tracing programs not usable here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// watchHere enters a fresh namespace with lo up and watches it.
func watchHere(t *testing.T, tr *Tracer) uint32 {
	t.Helper()
	ns := testns.Enter(t)
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(ns), &st); err != nil {
		t.Fatal(err)
	}
	if err := tr.Watch(uint32(st.Ino)); err != nil {
		t.Fatal(err)
	}
	return uint32(st.Ino)
}

// next reads events until want matches one; a missing event fails the
// test through the reader's deadline rather than a timed assertion.
func next(t *testing.T, tr *Tracer, want func(Event) bool) Event {
	t.Helper()
	tr.rd.SetDeadline(time.Now().Add(10 * time.Second))
	for {
		e, err := tr.Read()
		if err != nil {
			t.Fatalf("no matching event: %v", err)
		}
		if want(e) {
			return e
		}
	}
}

// sendUDP sends one datagram to 127.0.0.1:port from the current namespace.
func sendUDP(t *testing.T, port int) {
	t.Helper()
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("trace")); err != nil {
		t.Fatal(err)
	}
}

// A datagram to a port nobody listens on is freed by the UDP layer with
// the reason NO_SOCKET: the event names it, the namespace and the packet.
func TestDropReasonInWatchedNamespace(t *testing.T) {
	tr := newTracer(t)
	reasons, err := DropReasons()
	if err != nil {
		t.Fatal(err)
	}
	inum := watchHere(t, tr)
	const port = 9 // discard: nothing listens in a fresh namespace
	sendUDP(t, port)
	e := next(t, tr, func(e Event) bool { return e.Kind == KindDrop && reasons[e.Reason] == "NO_SOCKET" })
	if e.Netns != inum {
		t.Errorf("netns %d, want %d", e.Netns, inum)
	}
	if e.Location == 0 {
		t.Error("no location")
	}
	// IPv4 header (20 bytes), then the UDP destination port.
	if len(e.Head) < 24 || e.Head[0]>>4 != 4 || e.Head[9] != unix.IPPROTO_UDP {
		t.Fatalf("head %x is not the UDP datagram", e.Head)
	}
	if got := binary.BigEndian.Uint16(e.Head[22:24]); got != port {
		t.Errorf("dropped datagram to port %d, want %d", got, port)
	}
}

// Drops in namespaces that are not watched never reach user space.
func TestDropsElsewhereNotReported(t *testing.T) {
	tr := newTracer(t)
	watchHere(t, tr)
	// A second namespace, not watched: its drop must not show.
	other := testns.New(t)
	done := make(chan error, 1)
	go func() {
		// The thread is never unlocked: Go discards it with the
		// goroutine instead of reusing it in the other namespace.
		runtime.LockOSThread()
		if err := netns.Set(other); err != nil {
			done <- err
			return
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err == nil {
			var c net.Conn
			if c, err = net.Dial("udp4", "127.0.0.1:7"); err == nil {
				_, err = c.Write([]byte("elsewhere"))
				c.Close()
			}
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sendUDP(t, 9)
	// Only UDP datagrams count: the kernel may drop other packets here
	// too (CI once saw one before the datagram), and the ring keeps the
	// order in which drops happened, so a leak would come first.
	e := next(t, tr, func(e Event) bool {
		return e.Kind == KindDrop && len(e.Head) >= 24 && e.Head[0]>>4 == 4 && e.Head[9] == unix.IPPROTO_UDP
	})
	if got := binary.BigEndian.Uint16(e.Head[22:24]); got != 9 {
		t.Errorf("first reported UDP drop is to port %d: the unwatched namespace leaked", got)
	}
}

// An XDP program that returns XDP_ABORTED (here in generic mode on lo)
// is reported with its action, interface and name.
func TestXDPException(t *testing.T) {
	tr := newTracer(t)
	watchHere(t, tr)
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "aborts", Type: ebpf.XDP, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}, // XDP_ABORTED
	})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetXdpFdWithFlags(lo, prog.FD(), unix.XDP_FLAGS_SKB_MODE); err != nil {
		t.Fatal(err)
	}
	sendUDP(t, 9)
	e := next(t, tr, func(e Event) bool { return e.Kind == KindXDPException })
	if e.Reason != 0 || e.Ifindex != uint32(lo.Attrs().Index) || e.ProgName != "aborts" {
		t.Errorf("got action %d ifindex %d prog %q, want 0 (XDP_ABORTED) %d \"aborts\"", e.Reason, e.Ifindex, e.ProgName, lo.Attrs().Index)
	}
}
