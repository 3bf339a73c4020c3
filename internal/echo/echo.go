// Package echo is the service reals run on their VIP ports. It answers every
// line (TCP) or datagram (UDP) with a prefix naming the real that answered
// and the client it saw, so a user at the client can tell which backend took
// the flow and that the client's own address survived the tunnel.
package echo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Listener is one address the service answers on.
type Listener struct {
	Proto string // "tcp" or "udp"
	Addr  netip.AddrPort
}

// ParseListener reads "tcp/192.168.10.1:50007".
func ParseListener(s string) (Listener, error) {
	proto, addr, ok := strings.Cut(s, "/")
	if !ok || (proto != "tcp" && proto != "udp") {
		return Listener{}, fmt.Errorf("listener %q: want tcp/ADDR:PORT or udp/ADDR:PORT", s)
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return Listener{}, fmt.Errorf("listener %q: %w", s, err)
	}
	return Listener{Proto: proto, Addr: ap}, nil
}

func (l Listener) String() string { return l.Proto + "/" + l.Addr.String() }

// Server answers on its listeners.
type Server struct {
	Node string     // the real's node name
	Addr netip.Addr // the real's own (tunnel) address
}

// acceptBackoff is the pause after a failed accept.
const acceptBackoff = 50 * time.Millisecond

// maxChunk bounds memory per connection: a line longer than this is echoed
// in pieces, with the prefix only at its start, so bulk transfers stream.
const maxChunk = 64 << 10

// prefix is what precedes each answer, in the spirit of the reference lab's
// Python server: "[real 10.111.222.11] ('10.111.220.11', 40612): ".
func (s *Server) prefix(client netip.AddrPort) []byte {
	return fmt.Appendf(nil, "[%s %s] ('%s', %d): ", s.Node, s.Addr, client.Addr().Unmap(), client.Port())
}

// Serve binds every listener first (so that once one answers, all are
// bound) and then serves until ctx ends.
func (s *Server) Serve(ctx context.Context, listeners []Listener) error {
	var closers []io.Closer
	var serves []func()
	for _, l := range listeners {
		switch l.Proto {
		case "tcp":
			ln, err := freebind.Listen(context.Background(), "tcp", l.Addr.String())
			if err != nil {
				closeAll(closers)
				return err
			}
			closers = append(closers, ln)
			serves = append(serves, func() { s.serveTCP(ln) })
		case "udp":
			c, err := freebind.ListenPacket(context.Background(), "udp", l.Addr.String())
			if err != nil {
				closeAll(closers)
				return err
			}
			pc := c.(*net.UDPConn)
			closers = append(closers, pc)
			serves = append(serves, func() { s.serveUDP(pc) })
		default:
			closeAll(closers)
			return fmt.Errorf("listener %s: unknown protocol", l)
		}
	}
	var wg sync.WaitGroup
	for _, serve := range serves {
		wg.Go(serve)
	}
	<-ctx.Done()
	closeAll(closers)
	wg.Wait()
	return nil
}

// freebind binds addresses that are not configured yet: a real's service
// starts with its container, before dsrlab has put the VIP on lo.
var freebind = net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_FREEBIND, 1)
	})
	if err != nil {
		return err
	}
	return serr
}}

func closeAll(cs []io.Closer) {
	for _, c := range cs {
		c.Close()
	}
}

func (s *Server) serveTCP(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off rather
			// than spin on the error.
			time.Sleep(acceptBackoff)
			continue
		}
		go s.echoStream(c)
	}
}

func (s *Server) echoStream(c net.Conn) {
	defer c.Close()
	prefix := s.prefix(c.RemoteAddr().(*net.TCPAddr).AddrPort())
	r := bufio.NewReaderSize(c, maxChunk)
	w := bufio.NewWriterSize(c, maxChunk)
	atLineStart := true
	for {
		chunk, err := r.ReadSlice('\n')
		if len(chunk) > 0 {
			if atLineStart {
				w.Write(prefix)
			}
			w.Write(chunk)
			atLineStart = chunk[len(chunk)-1] == '\n'
		}
		// Flush whenever the input is drained so interactive use sees each
		// answer at once, while bulk input is answered in large writes.
		if r.Buffered() == 0 || err != nil {
			if w.Flush() != nil {
				return
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}

func (s *Server) serveUDP(pc *net.UDPConn) {
	buf := make([]byte, maxChunk)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		// The socket is bound to the VIP itself, so the answer leaves from the
		// VIP: the client must see the address it asked, not the real's.
		pc.WriteToUDPAddrPort(append(s.prefix(from), buf[:n]...), from)
	}
}
