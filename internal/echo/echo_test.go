package echo

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func startServer(t *testing.T, listeners ...Listener) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := &Server{Node: "real", Addr: netip.MustParseAddr("10.111.222.11")}
	go func() { done <- srv.Serve(ctx, listeners) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// freePort finds a port that is free for both protocols at the moment.
func freePort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

func dialRetry(t *testing.T, network, addr string) net.Conn {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial(network, addr)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s %s: %v", network, addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTCPLinesCarryRealAndClient(t *testing.T) {
	ap := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t))
	startServer(t, Listener{Proto: "tcp", Addr: ap})
	c := dialRetry(t, "tcp", ap.String())
	defer c.Close()
	local := c.LocalAddr().(*net.TCPAddr)
	r := bufio.NewReader(c)
	for _, line := range []string{"hello", "second line"} {
		if _, err := io.WriteString(c, line+"\n"); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		want := "[real 10.111.222.11] ('127.0.0.1', " + strconv.Itoa(local.Port) + "): " + line + "\n"
		if got != want {
			t.Errorf("answer = %q, want %q", got, want)
		}
	}
}

// TestBulkOfShortLinesReachesASingleThreadedClient sends lines as busybox
// nc does: one blocking write of what stdin gave, then whatever answer is
// already there, never both at once. With a header per line the answer grew
// five times faster than it was drained, the reply path filled and both ends
// blocked in write for good; with a header per read it keeps pace.
func TestBulkOfShortLinesReachesASingleThreadedClient(t *testing.T) {
	ap := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t))
	startServer(t, Listener{Proto: "tcp", Addr: ap})
	c := dialRetry(t, "tcp", ap.String()).(*net.TCPConn)
	defer c.Close()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var reply []byte
	buf := make([]byte, 8<<10)
	// readReady reads once if an answer is waiting, like nc after poll: the
	// socket is non-blocking under Go, so an empty queue is EAGAIN.
	readReady := func() {
		var n int
		raw.Read(func(fd uintptr) bool {
			n, _ = syscall.Read(int(fd), buf)
			return true
		})
		reply = append(reply, buf[:max(n, 0)]...)
	}
	const size = 8 << 20
	payload := bytes.Repeat([]byte("hello\n"), size/len("hello\n"))
	const write = 4 << 10
	// A stall shows as a write that never completes; the deadline turns it
	// into a failure instead of a hung test.
	c.SetDeadline(time.Now().Add(time.Minute))
	for off := 0; off < len(payload); off += write {
		if _, err := c.Write(payload[off:min(off+write, len(payload))]); err != nil {
			t.Fatalf("after %d of %d bytes sent and %d received: %v (the client stalled)", off, len(payload), len(reply), err)
		}
		readReady()
	}
	c.CloseWrite()
	rest, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	reply = append(reply, rest...)
	a, err := Parse(reply)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Payload, payload) {
		t.Errorf("echoed %d bytes, want the %d sent, unchanged and in order", len(a.Payload), len(payload))
	}
	// One header per read: a 4 KiB write costs one or two headers of about
	// 40 bytes, against 682 (one per line) before.
	if limit := len(payload) + len(payload)/10; len(reply) > limit {
		t.Errorf("answer is %d bytes for %d sent, want at most %d (a small header per read)", len(reply), len(payload), limit)
	}
}

func TestUDPDatagram(t *testing.T) {
	ap := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t))
	startServer(t, Listener{Proto: "udp", Addr: ap})
	c := dialRetry(t, "udp", ap.String())
	defer c.Close()
	buf := make([]byte, 512)
	// UDP has no handshake: resend until the server is bound and answers.
	for i := 0; ; i++ {
		c.Write([]byte("ping"))
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil {
			want := "[real 10.111.222.11] ('127.0.0.1', " + strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port) + "): ping"
			if got := string(buf[:n]); got != want {
				t.Errorf("answer = %q, want %q: one datagram, one header", got, want)
			}
			return
		}
		if i > 100 {
			t.Fatalf("no UDP answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // a refusal (not bound yet) comes back at once
	}
}

func TestParseListener(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantErr bool
	}{
		{"tcp/192.168.10.1:50007", false},
		{"udp/192.168.10.1:53", false},
		{"sctp/192.168.10.1:1", true},
		{"tcp192.168.10.1:1", true},
		{"tcp/192.168.10.1", true},
	} {
		l, err := ParseListener(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseListener(%q) error = %v, wantErr %v", tc.in, err, tc.wantErr)
		}
		if err == nil && l.String() != tc.in {
			t.Errorf("round trip %q -> %q", tc.in, l.String())
		}
	}
}

// TestListensBeforeTheAddressExists: a real's service starts with its
// container, before the VIP is on lo.
func TestListensBeforeTheAddressExists(t *testing.T) {
	notHere := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.77"), freePort(t)) // TEST-NET-1, never configured here
	startServer(t, Listener{Proto: "tcp", Addr: notHere}, Listener{Proto: "udp", Addr: notHere})
}
