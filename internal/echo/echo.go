// Package echo is the service reals run on their VIP ports. It answers every
// read (TCP) or datagram (UDP) with a header naming the real that answered
// and the client it saw, so a user at the client can tell which backend took
// the flow and that the client's own address survived the tunnel. The
// header's format is defined here only: Header formats it, Parse reads it.
package echo

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
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
	// Addr6 is the real's IPv6 address, named in answers to IPv6 clients
	// (an IPv6 VIP); Addr is named when it is not set.
	Addr6 netip.Addr
}

// acceptBackoff is the pause after a failed accept.
const acceptBackoff = 50 * time.Millisecond

// maxChunk is the most one read takes in, so memory per connection is
// bounded and a bulk answer carries a header at least every maxChunk bytes.
const maxChunk = 64 << 10

func (s *Server) header(client netip.AddrPort) Header {
	addr := s.Addr
	if client.Addr().Is6() && !client.Addr().Is4In6() && s.Addr6.IsValid() {
		addr = s.Addr6
	}
	return Header{Real: s.Node, RealAddr: addr, Client: client}
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
var freebind = net.ListenConfig{Control: func(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if strings.HasSuffix(network, "6") {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IPV6, unix.IPV6_FREEBIND, 1)
			return
		}
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

// echoStream answers each read with the header and what was read, in one
// write, as the reference lab's echo does. A typed line arrives in one read,
// so it comes back as one headed line; bulk input costs one header per read
// (a few dozen bytes per up to maxChunk), not one per line. A header per
// line made short lines come back five times larger than they went out, and
// a single-threaded client such as busybox nc, which blocks sending while
// the answer piles up unread, then stalls for good.
func (s *Server) echoStream(c net.Conn) {
	defer c.Close()
	h := s.header(c.RemoteAddr().(*net.TCPAddr).AddrPort()).Append(nil)
	buf := make([]byte, len(h)+maxChunk)
	copy(buf, h)
	for {
		n, err := c.Read(buf[len(h):])
		if n > 0 {
			if _, werr := c.Write(buf[:len(h)+n]); werr != nil {
				return
			}
		}
		if err != nil {
			// At EOF the client has sent everything and has every
			// answer: closing sends it the end of the stream.
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
		pc.WriteToUDPAddrPort(append(s.header(from).Append(nil), buf[:n]...), from)
	}
}
