// Package capture records packets on lab interfaces from dsrlab itself:
// an AF_PACKET socket per interface, opened inside the interface's network
// namespace, so no tcpdump is needed in the containers. Packets of several
// interfaces (and namespaces) come out as one stream in time order, to be
// written as pcap or pcapng or printed one line each.
package capture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/dsrlab/dsrlab/internal/capture/filter"
)

// Namespace runs fn on a thread inside a network namespace; sockets made
// there stay in it. *netconf.Namespace is one.
type Namespace interface {
	Do(fn func() error) error
}

// Source is an interface to capture on.
type Source struct {
	Node, Iface string
	NS          Namespace
}

// Interface describes an open source, in the order of the sources given
// to Open; Packet.Iface indexes it.
type Interface struct {
	Name     string // "node:iface"
	LinkType filter.LinkType
}

// Direction is the way a packet crossed the interface.
type Direction uint8

const (
	DirUnknown Direction = iota
	In
	Out
)

func (d Direction) String() string {
	switch d {
	case In:
		return "in"
	case Out:
		return "out"
	}
	return "?"
}

// Packet is one captured frame.
type Packet struct {
	Time  time.Time
	Iface int // index into Capture.Interfaces
	Dir   Direction
	// Type is the kernel's sll_pkttype (unix.PACKET_HOST, _BROADCAST,
	// _MULTICAST, _OTHERHOST, _OUTGOING).
	Type   uint8
	Data   []byte // the captured bytes, at most filter.Snaplen
	Length int    // the frame's length on the wire
}

// Capture is a set of open packet sockets.
type Capture struct {
	ifaces []Interface
	fds    []int
	buf    []byte
	oob    []byte
	// opened is the time of a packet the kernel did not stamp once Open
	// saw stamping on: such a packet came after the sockets were bound and
	// before Open returned. Without that certainty (stampsOn false) the
	// time it is read is the best there is.
	opened   time.Time
	stampsOn bool
	onDown   func(iface int)
}

// OnDown has Run call fn, with the interface's index, each time it finds
// an interface down: it was down when opened, went down, or is gone. Its
// socket sees nothing until the interface is up again, and nothing more
// at all if it was deleted (one made again under its name is another
// interface); the capture goes on on the others.
func (c *Capture) OnDown(fn func(iface int)) { c.onDown = fn }

// Open opens a socket on each source, in its namespace, that sees only
// packets of that interface which pass the filter expression (tcpdump
// syntax; empty for all). Nothing is read until Run.
func Open(sources []Source, expr string) (*Capture, error) {
	if len(sources) == 0 {
		return nil, errors.New("capture: no interface to capture on")
	}
	// A syntax error is the user's, whatever the interfaces: report it
	// before entering any namespace.
	if _, err := filter.Compile(expr, filter.Ethernet); err != nil {
		return nil, err
	}
	c := &Capture{buf: make([]byte, filter.Snaplen), oob: make([]byte, unix.CmsgSpace(3*16)), opened: time.Now()}
	progs := map[filter.LinkType][]unix.SockFilter{}
	for _, s := range sources {
		name := s.Node + ":" + s.Iface
		var fd int
		var link filter.LinkType
		err := s.NS.Do(func() (err error) {
			fd, link, err = openSocket(s.Iface, expr, progs)
			return err
		})
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("capture on %s: %w", name, err)
		}
		c.fds = append(c.fds, fd)
		c.ifaces = append(c.ifaces, Interface{Name: name, LinkType: link})
	}
	c.stampsOn = stampingOn(stampProbeLimit)
	return c, nil
}

// openSocket runs inside the interface's namespace. The socket is created
// with protocol 0, so it receives nothing until bind: the filter is in
// place before the first packet, and bind to the interface with ETH_P_ALL
// keeps every other interface's packets out.
func openSocket(iface, expr string, progs map[filter.LinkType][]unix.SockFilter) (fd int, link filter.LinkType, err error) {
	fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, 0, fmt.Errorf("packet socket: %w", err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	ifindex, hwType, err := interfaceOf(fd, iface)
	if err != nil {
		return -1, 0, err
	}
	if link, err = linkTypeOf(hwType); err != nil {
		return -1, 0, fmt.Errorf("%s: %w", iface, err)
	}
	prog, ok := progs[link]
	if !ok {
		if prog, err = assemble(expr, link); err != nil {
			return -1, 0, err
		}
		progs[link] = prog
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return -1, 0, fmt.Errorf("attach filter: %w", err)
	}
	if err := askForStamps(fd); err != nil {
		return -1, 0, fmt.Errorf("SO_TIMESTAMPING: %w", err)
	}
	// A burst (a TCP window of GSO frames) must not overflow the queue
	// while the merge waits for the other interfaces. FORCE needs
	// CAP_NET_ADMIN; the plain option is capped by rmem_max.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		return -1, 0, fmt.Errorf("bind to %s: %w", iface, err)
	}
	return fd, link, nil
}

const rcvBuf = 8 << 20

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func interfaceOf(fd int, iface string) (ifindex int, hwType uint16, err error) {
	ifr, err := unix.NewIfreq(iface)
	if err != nil {
		return 0, 0, fmt.Errorf("interface name %q: %w", iface, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, 0, fmt.Errorf("interface %s: %w", iface, err)
	}
	ifindex = int(ifr.Uint32())
	ifr, _ = unix.NewIfreq(iface)
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return 0, 0, fmt.Errorf("interface %s: hardware type: %w", iface, err)
	}
	return ifindex, ifr.Uint16(), nil // sa_family of the hardware address
}

// linkTypeOf maps the device's ARPHRD type to what its frames start with.
// Tunnel devices (ipip's tunl, sit, gre, tun) hand packet sockets the IP
// header itself.
func linkTypeOf(hwType uint16) (filter.LinkType, error) {
	switch hwType {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK:
		return filter.Ethernet, nil
	case unix.ARPHRD_TUNNEL, unix.ARPHRD_TUNNEL6, unix.ARPHRD_SIT, unix.ARPHRD_IPGRE, unix.ARPHRD_NONE:
		return filter.RawIP, nil
	}
	return 0, fmt.Errorf("hardware type %d (ARPHRD) is not supported", hwType)
}

func assemble(expr string, link filter.LinkType) ([]unix.SockFilter, error) {
	prog, err := filter.Compile(expr, link)
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", expr, err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}

// Interfaces describes the sources, in the order given to Open.
func (c *Capture) Interfaces() []Interface { return c.ifaces }

// Close closes the sockets.
func (c *Capture) Close() error {
	var errs []error
	for _, fd := range c.fds {
		errs = append(errs, unix.Close(fd))
	}
	c.fds = nil
	return errors.Join(errs...)
}

// Stats is the kernel's count, summed over the sockets, of packets that
// passed the filters and of those dropped because a queue was full.
type Stats struct {
	Received, Dropped uint64
}

// Stats reads and resets the kernel's counters (PACKET_STATISTICS).
func (c *Capture) Stats() (Stats, error) {
	var s Stats
	for i, fd := range c.fds {
		st, err := unix.GetsockoptTpacketStats(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
		if err != nil {
			return s, fmt.Errorf("%s: statistics: %w", c.ifaces[i].Name, err)
		}
		s.Received += uint64(st.Packets)
		s.Dropped += uint64(st.Drops)
	}
	return s, nil
}

const (
	// pollInterval bounds how long a cancelled context goes unnoticed.
	pollInterval = 100 * time.Millisecond
	// settle is how old a packet must be before it is handed on: one
	// timestamped on another CPU just before the sockets were read may be
	// queued just after, and must still be sorted before later ones.
	settle = time.Millisecond
)

// Run reads packets and calls fn with each, in timestamp order across all
// sockets, until count packets were handed on (0: no limit), ctx is done
// (which is a normal end: Run then returns nil), or fn or a read fails.
// Packet.Data is fn's to keep.
func (c *Capture) Run(ctx context.Context, count int, fn func(Packet) error) error {
	pfds := make([]unix.PollFd, len(c.fds))
	for i, fd := range c.fds {
		pfds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	}
	var held []Packet
	sent := 0
	// emit hands on, in order, the held packets older than cutoff.
	emit := func(cutoff time.Time) (bool, error) {
		slices.SortStableFunc(held, func(a, b Packet) int { return a.Time.Compare(b.Time) })
		n := 0
		for ; n < len(held) && !held[n].Time.After(cutoff); n++ {
			if err := fn(held[n]); err != nil {
				return true, err
			}
			if sent++; count > 0 && sent >= count {
				return true, nil
			}
		}
		held = slices.Delete(held, 0, n)
		return false, nil
	}
	for {
		if ctx.Err() != nil {
			_, err := emit(time.Now().Add(time.Hour)) // everything left
			return err
		}
		timeout := pollInterval
		if len(held) > 0 {
			timeout = 2 * settle
		}
		if _, err := unix.Poll(pfds, int(timeout.Milliseconds())); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("capture: poll: %w", err)
		}
		cutoff := time.Now().Add(-settle)
		for i, fd := range c.fds {
			var err error
			if held, err = c.drain(fd, i, held); err != nil {
				return err
			}
		}
		if done, err := emit(cutoff); done || err != nil {
			return err
		}
	}
}

// drainBatch bounds one drain: on a busy interface the queue may never
// empty, and the other sockets (and a cancelled context) must get a turn.
const drainBatch = 256

// drain reads what the socket has queued, without waiting, up to
// drainBatch packets.
func (c *Capture) drain(fd, iface int, into []Packet) ([]Packet, error) {
	for range drainBatch {
		n, oobn, _, from, err := unix.Recvmsg(fd, c.buf, c.oob, unix.MSG_TRUNC|unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			return into, nil
		case errors.Is(err, unix.ENETDOWN):
			// Said once per time down (reading clears the socket's
			// error); the kernel hooks the socket in again when the
			// interface comes up.
			if c.onDown != nil {
				c.onDown(iface)
			}
			continue
		case err != nil:
			return into, fmt.Errorf("capture on %s: read: %w", c.ifaces[iface].Name, err)
		}
		p := Packet{Iface: iface, Length: n, Data: slices.Clone(c.buf[:min(n, len(c.buf))])}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok {
			p.Type = ll.Pkttype
			p.Dir = In
			if ll.Pkttype == unix.PACKET_OUTGOING {
				p.Dir = Out
			}
		}
		var ok bool
		if p.Time, ok = stamp(c.oob[:oobn]); !ok {
			p.Time = c.opened
			if !c.stampsOn {
				p.Time = time.Now()
			}
		}
		into = append(into, p)
	}
	return into, nil
}
