package echo

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
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

func TestTCPBulkStreamsWithOnePrefix(t *testing.T) {
	ap := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t))
	startServer(t, Listener{Proto: "tcp", Addr: ap})
	c := dialRetry(t, "tcp", ap.String())
	defer c.Close()
	payload := bytes.Repeat([]byte("x"), 3*maxChunk+17) // one line longer than the chunk size
	go func() {
		c.Write(payload)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	prefix, rest, ok := bytes.Cut(got, []byte(": "))
	if !ok || !strings.HasPrefix(string(prefix), "[real ") {
		t.Fatalf("answer does not start with a prefix: %q", got[:min(len(got), 80)])
	}
	if !bytes.Equal(rest, payload) {
		t.Errorf("echoed %d bytes, want the %d sent, unchanged", len(rest), len(payload))
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
			if got := string(buf[:n]); !strings.HasPrefix(got, "[real 10.111.222.11] ('127.0.0.1', ") || !strings.HasSuffix(got, "): ping") {
				t.Errorf("answer = %q", got)
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
