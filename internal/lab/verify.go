package lab

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dsrlab/dsrlab/internal/echo"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// Check is the outcome of talking to one VIP from one client.
type Check struct {
	VIP    string `json:"vip"`
	Client string `json:"client"`
	// LB is the balancer that carried the exchange: one check per
	// balancer of a tier.
	LB         string `json:"lb,omitempty"`
	Real       string `json:"real,omitempty"`        // node and address named in the answer
	ClientSeen string `json:"client_seen,omitempty"` // the client address the real saw
	ReplyFrom  string `json:"reply_from,omitempty"`
	// Bytes received on the balancer's uplink during the exchange, against
	// the bytes sent each way: about 1x means requests only (DSR), about 2x
	// means the replies came back through the balancer too.
	LBBytes uint64 `json:"lb_rx_bytes"`
	Payload uint64 `json:"payload_bytes"`
	Mode    string `json:"mode"` // dsr or nat
	Path    string `json:"path"` // pathDirect or pathHairpin
	Pass    bool   `json:"pass"`
	Skipped bool   `json:"skipped,omitempty"` // a VIP without the echo service
	Reason  string `json:"reason,omitempty"`
}

// verifyPayload is large next to the headers and acknowledgements of the
// exchange, so the balancer's byte counter tells a one-way from a two-way
// path without doubt.
const verifyPayload = 256 << 10

// Verify talks to every VIP from every client of the lab and checks the
// answer, which real gave it, that the real saw the client's own address,
// and the path of the reply.
//
// A pair whose client and balancer are both on another host is checked
// there, by dsrlab's agent; a pair split over two hosts is driven from
// here, each end reached where it runs.
func Verify(ctx context.Context, rts runtime.Set, topo *topology.Topology) ([]Check, error) {
	checks, hosts, err := verifyOn(ctx, rts, topo, topology.LocalHost, localOpener(ctx, rts, topo))
	if err != nil {
		return nil, err
	}
	results, err := onHosts(ctx, rts, topo, hosts, phaseVerify)
	for _, res := range results {
		checks = append(checks, res.Checks...)
	}
	return checks, err
}

// verifyOn checks the VIPs whose client and balancer are both on host —
// and, on the local host, the pairs split over two hosts — and lists the
// other hosts where some pairs are. rts reaches the other hosts' agents
// (nil on an agent, which checks its own host's pairs only).
func verifyOn(ctx context.Context, rts runtime.Set, topo *topology.Topology, host string, opener nsOpener) ([]Check, []string, error) {
	nss := map[string]*netconf.Namespace{}
	defer func() {
		for _, ns := range nss {
			ns.Close()
		}
	}()
	open := func(n *topology.Node) (*netconf.Namespace, error) {
		if ns := nss[n.Name]; ns != nil {
			return ns, nil
		}
		ns, err := opener(n)
		if err != nil {
			return nil, err
		}
		nss[n.Name] = ns
		return ns, nil
	}
	clients := topo.NodesOfKind(topology.KindClient)
	if len(clients) == 0 || len(topo.VIPs) == 0 {
		return nil, nil, fmt.Errorf("lab %q has no client or no VIP to verify", topo.Name)
	}
	var checks []Check
	var others []string
	for _, v := range topo.VIPs {
		if v.Service != topology.ServiceEcho {
			// Nothing of dsrlab's answers there: the user's own server
			// speaks its own protocol.
			if host == topology.LocalHost {
				checks = append(checks, Check{VIP: v.String(), Mode: string(v.Mode), Skipped: true, Pass: true, Reason: "service: none"})
			}
			continue
		}
		dst := netip.AddrPortFrom(v.Address, v.Port)
		for _, cl := range clients {
			together := !slices.ContainsFunc(v.LBs, func(lb *topology.Node) bool { return lb.Host != cl.Host })
			switch {
			case !together && host != topology.LocalHost:
				continue // a pair split over two hosts is driven by up's host
			case together && cl.Host.Name != host:
				if !slices.Contains(others, cl.Host.Name) {
					others = append(others, cl.Host.Name)
				}
				continue
			}
			// Each end is reached in this process when it runs on host,
			// else through the agent of its own host.
			var clientNS *netconf.Namespace
			var err error
			if cl.Host.Name == host {
				if clientNS, err = open(cl); err != nil {
					return nil, nil, err
				}
			}
			ends := pairEnds{
				probe: func() (Exchange, error) {
					if clientNS == nil {
						return remoteProbe(ctx, rts, topo, cl, dst, v.Proto, verifyPayload)
					}
					return Probe(ctx, clientNS, dst, v.Proto, verifyPayload)
				},
			}
			for _, lb := range v.LBs {
				rx := func() (uint64, error) { return remoteRxBytes(ctx, rts, topo, lb.Uplink()) }
				if lb.Host.Name == host {
					lbNS, err := open(lb)
					if err != nil {
						return nil, nil, err
					}
					rx = func() (uint64, error) { return rxBytes(lbNS, lb.Uplink().Name) }
				}
				ends.rxBytes = append(ends.rxBytes, rx)
			}
			checks = append(checks, verifyPair(v, cl, ends)...)
		}
	}
	return checks, others, nil
}

// pairEnds are what verify does at either end of a client–VIP pair, in
// this process or through the agent of the host the end runs on.
type pairEnds struct {
	probe   func() (Exchange, error)   // from the client
	rxBytes []func() (uint64, error) // received on each balancer's uplink, in v.LBs' order
}

// tierProbes bounds the probes verify sends to find every balancer of a
// tier: each new connection is hashed by the router to one of N balancers,
// so missing one of three in 48 tries happens about once in 10^8 runs if
// the router spreads flows at all.
const tierProbes = 48

// verifyPair checks the exchange between a client and a VIP through each
// of the VIP's balancers: one probe for a single balancer; for a tier, new
// connections until every balancer has carried one (the router's ECMP
// picks), each checked like a single one, and a failing check for each
// balancer that none reached.
func verifyPair(v *topology.VIP, cl *topology.Node, ends pairEnds) []Check {
	done := make([]*Check, len(v.LBs))
	var out []Check
	for try := 0; try < tierProbes && slices.Contains(done, nil); try++ {
		c, lb := verifyOne(v, cl, ends)
		if lb < 0 || !c.Pass {
			return append(out, c) // nothing more to learn from this pair
		}
		if done[lb] == nil {
			done[lb] = &c
			out = append(out, c)
		}
	}
	for i, c := range done {
		if c == nil {
			out = append(out, Check{VIP: v.String(), Client: cl.Name, LB: v.LBs[i].Name, Payload: verifyPayload, Mode: string(v.Mode),
				Reason: fmt.Sprintf("none of %d connections crossed %s: the router does not spread the VIP over it (see `dsrlab routes`)", tierProbes, v.LBs[i].Name)})
		}
	}
	return out
}

func rxBytes(ns *netconf.Namespace, iface string) (uint64, error) {
	st, err := ns.Stats(iface)
	if err != nil {
		return 0, err
	}
	return st.RxBytes, nil
}

// verifyOne makes one exchange, and says which balancer carried it (the
// one whose uplink received the most; -1 when it could not be told).
func verifyOne(v *topology.VIP, cl *topology.Node, ends pairEnds) (Check, int) {
	c := Check{VIP: v.String(), Client: cl.Name, Payload: verifyPayload, Mode: string(v.Mode)}
	read := func() ([]uint64, error) {
		rx := make([]uint64, len(ends.rxBytes))
		for i, f := range ends.rxBytes {
			var err error
			if rx[i], err = f(); err != nil {
				return nil, err
			}
		}
		return rx, nil
	}
	before, err := read()
	if err != nil {
		c.Reason = err.Error()
		return c, -1
	}
	ex, err := ends.probe()
	if err != nil {
		c.Reason = err.Error()
		return c, -1
	}
	answer := ex.Answer
	c.ReplyFrom = ex.From
	after, err := read()
	if err != nil {
		c.Reason = err.Error()
		return c, -1
	}
	lb := 0
	for i := range after {
		if after[i]-before[i] > after[lb]-before[lb] {
			lb = i
		}
	}
	c.LB = v.LBs[lb].Name
	c.LBBytes = after[lb] - before[lb]
	return judge(v, v.LBs[lb], cl, c, answer), lb
}

// judge decides an exchange through balancer lb: the answer, the real
// that gave it, the address it saw, and the reply's path.
func judge(v *topology.VIP, lb, cl *topology.Node, c Check, answer string) Check {
	a, err := echo.Parse([]byte(answer))
	if err != nil {
		c.Reason = err.Error()
		return c
	}
	c.Real = a.Real + " " + a.RealAddr.String()
	c.ClientSeen = a.Client.String()
	c.Path = pathDirect
	if c.LBBytes > c.Payload*3/2 {
		c.Path = pathHairpin
	}
	// DSR keeps the client's address all the way to the real and returns
	// directly; NAT shows the real the balancer's address (SNAT) and brings
	// the reply back through it.
	wantSeen, wantPath := "", pathDirect
	if up := cl.Uplink(); up != nil && up.AddrOf(v.Is6()).IsValid() {
		wantSeen = up.AddrOf(v.Is6()).Addr().String()
	}
	if v.NAT() {
		wantSeen, wantPath = lb.Uplink().AddrOf(v.Is6()).Addr().String(), pathHairpin
	}
	vipAddr := netip.AddrPortFrom(v.Address, v.Port).String()
	switch {
	case wantSeen != "" && a.Client.Addr().String() != wantSeen:
		c.Reason = fmt.Sprintf("the real saw %s, want %s", a.Client.Addr(), wantSeen)
	case c.ReplyFrom != vipAddr:
		c.Reason = "the reply came from " + c.ReplyFrom + ", not the VIP"
	case c.LBBytes < c.Payload:
		c.Reason = fmt.Sprintf("only %d bytes crossed the balancer for a %d-byte request: it did not carry the request", c.LBBytes, c.Payload)
	case c.Path != wantPath:
		c.Reason = fmt.Sprintf("reply path %q, want %q for a %s VIP", c.Path, wantPath, v.Mode)
	default:
		c.Pass = true
	}
	return c
}

// Reply paths as verify reports them.
const (
	pathDirect  = "direct return"
	pathHairpin = "through the balancer"
)

// Exchange is one probe of a VIP: the answer, where it came from, and the
// client socket's own address, which names the flow in a capture (trace).
type Exchange struct {
	Answer string
	From   string // the answer's source, address:port
	Local  netip.AddrPort
}

// Probe talks to dst from ns the way verify does: payload bytes as one
// line on a TCP connection, or in datagrams of at most 1 KiB from one UDP
// socket, and the echo of the (last) one. The Exchange's Local is set even
// when the probe fails, once a socket exists.
func Probe(ctx context.Context, ns *netconf.Namespace, dst netip.AddrPort, proto topology.Proto, payload int) (Exchange, error) {
	if proto == topology.ProtoUDP {
		return exchangeUDP(ctx, ns, dst, payload)
	}
	return exchangeTCP(ctx, ns, dst, payload)
}

// unblockOnCancel makes a blocked read or write on c return when ctx
// ends (Ctrl-C during verify or trace); the returned function stops that.
func unblockOnCancel(ctx context.Context, c interface{ SetDeadline(time.Time) error }) func() bool {
	return context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
}

// exchangeTCP sends one line of payload bytes and reads its echo.
func exchangeTCP(ctx context.Context, ns *netconf.Namespace, dst netip.AddrPort, payload int) (Exchange, error) {
	var ex Exchange
	// The socket is bound before it connects, so that a connection that
	// never comes up still has a port to report.
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(network, _ string, c syscall.RawConn) error {
		var wildcard unix.Sockaddr = &unix.SockaddrInet4{}
		if network == "tcp6" {
			wildcard = &unix.SockaddrInet6{}
		}
		var err error
		cerr := c.Control(func(fd uintptr) {
			if err = unix.Bind(int(fd), wildcard); err == nil {
				ex.Local, err = boundTo(int(fd))
			}
		})
		return cmp.Or(cerr, err)
	}}
	var conn net.Conn
	err := ns.Do(func() (err error) {
		conn, err = d.DialContext(ctx, "tcp", dst.String())
		return err
	})
	if err != nil {
		return ex, err
	}
	defer conn.Close()
	defer unblockOnCancel(ctx, conn)()
	ex.Local = conn.LocalAddr().(*net.TCPAddr).AddrPort()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	line := strings.Repeat("v", payload-1) + "\n"
	errc := make(chan error, 1)
	go func() {
		_, err := io.WriteString(conn, line)
		errc <- err
	}()
	answer, err := bufio.NewReaderSize(conn, 1<<20).ReadString('\n')
	if err != nil {
		return ex, fmt.Errorf("read answer: %w", err)
	}
	if err := <-errc; err != nil {
		return ex, fmt.Errorf("send: %w", err)
	}
	// A TCP socket only accepts segments from the address it connected to,
	// so the answer's source is the VIP by construction.
	ex.Answer, ex.From = answer, conn.RemoteAddr().String()
	return ex, nil
}

// boundTo reads a socket's local address and port.
func boundTo(fd int) (netip.AddrPort, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), nil
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)), nil
	}
	return netip.AddrPort{}, fmt.Errorf("socket address %T is not IP", sa)
}

// exchangeUDP sends datagrams totalling payload bytes from an unconnected
// socket, so the source of each answer is observed, not assumed.
func exchangeUDP(ctx context.Context, ns *netconf.Namespace, dst netip.AddrPort, payload int) (Exchange, error) {
	var ex Exchange
	var pc *net.UDPConn
	err := ns.Do(func() (err error) {
		pc, err = net.ListenUDP("udp", &net.UDPAddr{})
		return err
	})
	if err != nil {
		return ex, err
	}
	defer pc.Close()
	defer unblockOnCancel(ctx, pc)()
	ex.Local = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	const datagram = 1024
	msg := []byte(strings.Repeat("v", min(payload, datagram)))
	buf := make([]byte, 2*datagram)
	to := net.UDPAddrFromAddrPort(dst)
	for sent := 0; sent < payload; sent += len(msg) {
		if err := ctx.Err(); err != nil {
			return ex, err
		}
		if _, err := pc.WriteToUDP(msg, to); err != nil {
			return ex, err
		}
		pc.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, src, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return ex, fmt.Errorf("no UDP answer: %w", err)
		}
		ex.Answer, ex.From = string(buf[:n]), netip.AddrPortFrom(src.Addr().Unmap(), src.Port()).String()
	}
	return ex, nil
}
