package health

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/topology"
)

// loopback stands in for a katran's namespace: it dials 127.0.0.1 at the
// port of the address asked for, and records the mark.
type loopback struct{ marks []uint32 }

func (l *loopback) dial(ctx context.Context, network, addr string, mark uint32) (net.Conn, error) {
	l.marks = append(l.marks, mark)
	_, port, _ := net.SplitHostPort(addr)
	var d net.Dialer
	return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
}

func target(t *testing.T, typ topology.CheckType, proto topology.Proto, port uint16, path string) Target {
	t.Helper()
	hc := &topology.HealthCheck{Type: typ, Port: port, Path: path, Interval: time.Second, Timeout: 300 * time.Millisecond, Fall: 1, Rise: 1}
	return Target{VIP: &topology.VIP{Address: netip.MustParseAddr("192.168.10.1"), Port: port, Proto: proto, HealthCheck: hc}, Mark: MarkBase + 4}
}

// serveTCP answers every connection with answer (nil: closes at once).
func serveTCP(t *testing.T, answer func(req string) string) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
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
				if answer == nil {
					return
				}
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Write([]byte(answer(line)))
			}()
		}
	}()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

func freePort(t *testing.T, network string) uint16 {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return uint16(c.LocalAddr().(*net.UDPAddr).Port)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

func TestRunChecks(t *testing.T) {
	status := func(code string) func(string) string {
		return func(req string) string {
			if !strings.HasPrefix(req, "GET /healthz HTTP/1.0") {
				return "HTTP/1.0 400 Bad Request\r\n\r\n"
			}
			return "HTTP/1.0 " + code + " X\r\n\r\n"
		}
	}
	udpEchoes, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udpEchoes.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := udpEchoes.ReadFrom(buf)
			if err != nil {
				return
			}
			udpEchoes.WriteTo(buf[:n], from)
		}
	}()
	udpPort := uint16(udpEchoes.LocalAddr().(*net.UDPAddr).Port)

	for _, tc := range []struct {
		name string
		tg   Target
		ok   bool
	}{
		{"tcp accepted", target(t, topology.CheckTCP, topology.ProtoTCP, serveTCP(t, nil), ""), true},
		{"tcp refused", target(t, topology.CheckTCP, topology.ProtoTCP, freePort(t, "tcp"), ""), false},
		{"http 200", target(t, topology.CheckHTTP, topology.ProtoTCP, serveTCP(t, status("200")), "/healthz"), true},
		{"http 302", target(t, topology.CheckHTTP, topology.ProtoTCP, serveTCP(t, status("302")), "/healthz"), true},
		{"http 503", target(t, topology.CheckHTTP, topology.ProtoTCP, serveTCP(t, status("503")), "/healthz"), false},
		{"http not http", target(t, topology.CheckHTTP, topology.ProtoTCP, serveTCP(t, func(string) string { return "hello\n" }), "/healthz"), false},
		{"http closed at once", target(t, topology.CheckHTTP, topology.ProtoTCP, serveTCP(t, nil), "/healthz"), false},
		{"udp answered", target(t, topology.CheckUDPEcho, topology.ProtoUDP, udpPort, ""), true},
		{"udp unanswered (timeout)", target(t, topology.CheckUDPEcho, topology.ProtoUDP, freePort(t, "udp"), ""), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &loopback{}
			latency, err := Run(context.Background(), l.dial, tc.tg)
			if (err == nil) != tc.ok {
				t.Errorf("error %v, want ok=%v", err, tc.ok)
			}
			if latency <= 0 || len(l.marks) != 1 || l.marks[0] != tc.tg.Mark {
				t.Errorf("latency %v, marks %v; want a latency and one dial with mark %#x", latency, l.marks, tc.tg.Mark)
			}
		})
	}
}
