package topology

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// LocalHost is the machine dsrlab runs on: its default container engine
// (DOCKER_HOST, or the local socket). Nodes without a host run there.
const LocalHost = "local"

const (
	// DefaultVXLANPort is the IANA port for VXLAN, where links between
	// hosts are carried unless the file says otherwise.
	DefaultVXLANPort = 4789
	// DefaultUnderlayMTU is a host's underlay MTU unless given.
	DefaultUnderlayMTU = 1500
	// VXLANOverhead is what VXLAN adds to a frame on the underlay:
	// outer IPv4 (20), UDP (8), VXLAN (8) and the inner Ethernet header
	// (14).
	VXLANOverhead = 50
)

// Host is a machine with its own container engine. Links between nodes on
// different hosts are VXLAN tunnels between their underlay addresses.
type Host struct {
	Name string
	// Docker is the engine's address (unix://, tcp:// or ssh://); "" for
	// the local host means its default engine.
	Docker string
	TLS    *TLSFiles // for tcp://; nil without TLS
	// Underlay is the host's address on the network between the hosts:
	// the VXLAN endpoint. Only hosts with links to other hosts need one.
	Underlay netip.Addr
	// MTU is the underlay's MTU.
	MTU int
}

// TLSFiles are the client certificate files for an engine reached over TCP.
type TLSFiles struct {
	CA, Cert, Key string
}

// Local tells whether the host is the one dsrlab runs on.
func (h *Host) Local() bool { return h.Name == LocalHost }

// VXLAN is how a link between two hosts is carried.
type VXLAN struct {
	// VNI is derived from the lab and the link's endpoints, so that a lab
	// comes back with the same VNIs and two links never share one.
	VNI  uint32
	Port int
}

// Host returns the host called name, or nil.
func (t *Topology) Host(name string) *Host {
	for _, h := range t.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// buildHosts reads the hosts block. The local host always exists.
func (b *builder) buildHosts(t *Topology, raws map[string]*rawHost, rv *rawVXLAN) {
	t.VXLANPort = DefaultVXLANPort
	if rv != nil && rv.Port != nil {
		if *rv.Port < 1 || *rv.Port > 65535 {
			b.errorf(fieldPath{"vxlan", "port"}, "%d is out of range 1..65535", *rv.Port)
		}
		t.VXLANPort = int(*rv.Port)
	}
	if _, ok := raws[LocalHost]; !ok {
		t.Hosts = append(t.Hosts, &Host{Name: LocalHost, MTU: DefaultUnderlayMTU})
	}
	underlays := map[netip.Addr]string{}
	for _, name := range slices.Sorted(maps.Keys(raws)) {
		p := fieldPath{"hosts", name}
		rh := cmp.Or(raws[name], &rawHost{})
		h := &Host{Name: name, Docker: rh.Docker, MTU: DefaultUnderlayMTU}
		if !nodeNameRE.MatchString(name) {
			b.keyErrorf(p, "%q is not a valid host name: use up to 32 of a-z, 0-9, _ and -, starting with a letter or digit", name)
		}
		b.engineURL(h, rh, p)
		if rh.Underlay != "" {
			a, err := netip.ParseAddr(rh.Underlay)
			switch {
			case err != nil || !a.Is4():
				b.errorf(p.key("underlay"), "%q is not an IPv4 address (VXLAN endpoints here are IPv4)", rh.Underlay)
			case !usable(a):
				b.errorf(p.key("underlay"), "%q is not a unicast host address", rh.Underlay)
			case underlays[a] != "":
				b.errorf(p.key("underlay"), "%s is already the underlay of host %q", a, underlays[a])
			default:
				h.Underlay = a
				underlays[a] = name
			}
		}
		if rh.MTU != nil {
			if *rh.MTU < minMTU+VXLANOverhead || *rh.MTU > 65535 {
				b.errorf(p.key("mtu"), "%d is out of range %d..65535", *rh.MTU, minMTU+VXLANOverhead)
			}
			h.MTU = int(*rh.MTU)
		}
		t.Hosts = append(t.Hosts, h)
	}
	slices.SortFunc(t.Hosts, func(a, b *Host) int { return cmp.Compare(a.Name, b.Name) })
}

func (b *builder) engineURL(h *Host, rh *rawHost, p fieldPath) {
	if rh.TLS != nil {
		h.TLS = &TLSFiles{CA: b.relative(rh.TLS.CA), Cert: b.relative(rh.TLS.Cert), Key: b.relative(rh.TLS.Key)}
	}
	if rh.Docker == "" {
		if !h.Local() {
			b.errorf(p.key("docker"), "required: the address of the host's engine (unix:///run/docker.sock, tcp://HOST:2376, ssh://USER@HOST)")
		}
		if h.TLS != nil {
			b.errorf(p.key("tls"), "goes with a tcp:// engine address")
		}
		return
	}
	if h.Local() {
		b.errorf(p.key("docker"), "the local host is the engine dsrlab finds itself (DOCKER_HOST or the local socket); name other engines as other hosts")
		return
	}
	u, err := url.Parse(rh.Docker)
	switch {
	case err != nil:
		b.errorf(p.key("docker"), "%q is not an engine address: %v", rh.Docker, err)
	case u.Scheme == "ssh":
		if _, err := ParseSSHEngine(rh.Docker); err != nil {
			b.errorf(p.key("docker"), "%v", err)
		}
		if h.TLS != nil {
			b.errorf(p.key("tls"), "goes with a tcp:// engine address: an ssh:// engine is reached with SSH's own encryption and keys")
		}
	case u.Scheme == "unix" && u.Path != "":
		if h.TLS != nil {
			b.errorf(p.key("tls"), "goes with a tcp:// engine address")
		}
	case u.Scheme == "tcp" && u.Host != "":
	default:
		b.errorf(p.key("docker"), "%q is not an engine address: want unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT][/SOCKET]", rh.Docker)
	}
}

// nodeHost resolves a node's host field.
func (b *builder) nodeHost(t *Topology, n *Node, name string, p fieldPath) {
	n.Host = t.Host(cmp.Or(name, LocalHost))
	if n.Host == nil {
		var names []string
		for _, h := range t.Hosts {
			names = append(names, h.Name)
		}
		b.errorf(p, "unknown host %q (hosts: %v)", name, names)
		n.Host = t.Host(LocalHost)
	}
}

// crossHost makes a link between two hosts a VXLAN tunnel: both hosts need
// an underlay, and the link's MTU must fit the underlay with VXLAN's
// overhead (and defaults to what fits).
func (b *builder) crossHost(t *Topology, l *Link, explicitMTU bool, p fieldPath) {
	ha, hb := l.A.Node.Host, l.B.Node.Host
	if ha == hb {
		return
	}
	for _, h := range []*Host{ha, hb} {
		if !h.Underlay.IsValid() {
			b.errorf(p.key("endpoints"), "links hosts %q and %q, but host %q has no underlay address for the VXLAN tunnel", ha.Name, hb.Name, h.Name)
			return
		}
	}
	fits := min(ha.MTU, hb.MTU) - VXLANOverhead
	switch {
	case !explicitMTU:
		l.setMTU(min(l.MTU, fits))
	case l.MTU > fits:
		b.errorf(p.key("mtu"), "%d does not fit the underlay between %q and %q: VXLAN needs %d bytes of %d, so at most %d", l.MTU, ha.Name, hb.Name, VXLANOverhead, min(ha.MTU, hb.MTU), fits)
	}
	l.VXLAN = &VXLAN{VNI: vniFor(t, l), Port: t.VXLANPort}
}

func (l *Link) setMTU(mtu int) {
	l.MTU, l.A.MTU, l.B.MTU = mtu, mtu, mtu
}

// vniFor derives a link's VNI from the lab and its endpoints, moving on
// past VNIs the lab's other links already have; 0 is not a valid VNI.
func vniFor(t *Topology, l *Link) uint32 {
	sum := sha256.Sum256([]byte(t.Name + "/" + l.A.String() + "/" + l.B.String()))
	vni := binary.BigEndian.Uint32(sum[:4]) & 0xffffff
	for {
		taken := vni == 0
		for _, other := range t.Links {
			taken = taken || other.VXLAN != nil && other.VXLAN.VNI == vni
		}
		if !taken {
			return vni
		}
		vni = (vni + 1) & 0xffffff
	}
}

// DefaultSSHPort and DefaultEngineSocket complete an ssh:// engine address
// that leaves them out, as the docker CLI does.
const (
	DefaultSSHPort      = 22
	DefaultEngineSocket = "/var/run/docker.sock"
)

// SSHEngine is an engine reached through an SSH server: dsrlab logs in and
// has the server forward a connection to the engine's unix socket.
type SSHEngine struct {
	// User logs in; "" leaves it to ssh_config, then the user running
	// dsrlab.
	User string
	// Host is a name or an address (an IPv6 one without brackets), or an
	// alias of ssh_config.
	Host string
	// Port 0 leaves it to ssh_config, then DefaultSSHPort.
	Port   int
	Socket string
}

// ParseSSHEngine reads ssh://[USER@]HOST[:PORT][/SOCKET]. Errors name the
// address.
func ParseSSHEngine(addr string) (SSHEngine, error) {
	bad := func(format string, args ...any) (SSHEngine, error) {
		return SSHEngine{}, fmt.Errorf("%q is not an ssh:// engine address: "+format, append([]any{addr}, args...)...)
	}
	u, err := url.Parse(addr)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return bad("%v", err)
	}
	e := SSHEngine{Host: u.Hostname(), Socket: cmp.Or(u.Path, DefaultEngineSocket)}
	if u.User != nil {
		e.User = u.User.Username()
	}
	switch {
	case u.Scheme != "ssh":
		return bad("the scheme is %q", u.Scheme)
	case u.Opaque != "":
		return bad("want ssh://[USER@]HOST[:PORT][/SOCKET]")
	case u.RawQuery != "" || u.ForceQuery:
		return bad("query strings are not supported (only the user, host, port and socket path are used)")
	case strings.Contains(addr, "#"):
		return bad("fragments are not supported")
	case e.Host == "":
		return bad("no host")
	case u.User != nil && e.User == "":
		return bad("empty user name before @")
	}
	if _, set := u.User.Password(); set {
		return bad("passwords are not supported: dsrlab logs in with keys (ssh-agent or ~/.ssh/id_*)")
	}
	if strings.HasSuffix(u.Host, ":") {
		return bad("empty port after the host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("port %s is out of range 1..65535", p)
		}
		e.Port = n
	}
	if e.Socket == "/" || path.Clean(e.Socket) != e.Socket {
		return bad("%q is not a clean absolute path of the engine's socket", e.Socket)
	}
	return e, nil
}

// Address is the engine's SSH server as host:port.
func (e SSHEngine) Address() string {
	return net.JoinHostPort(e.Host, strconv.Itoa(cmp.Or(e.Port, DefaultSSHPort)))
}

// Advice names what a valid topology does that likely loses packets or
// connections: validate prints it and up notes it.
func (t *Topology) Advice() []string {
	return append(t.mtuAdvice(), t.tierAdvice()...)
}

// mtuAdvice: a user's balancer behind a link between hosts too narrow for
// a client's full-size packet once encapsulated. dsrlab's own balancer
// makes the client send smaller packets (ICMP fragmentation needed); a
// program of the user's may not.
func (t *Topology) mtuAdvice() []string {
	var own []string
	for _, k := range t.NodesOfKind(KindKatran) {
		if k.Program != nil {
			own = append(own, k.Name)
		}
	}
	clientMTU := 0
	for _, c := range t.NodesOfKind(KindClient) {
		for _, i := range c.Interfaces {
			clientMTU = max(clientMTU, i.MTU)
		}
	}
	overhead := 0
	for _, v := range t.VIPs {
		overhead = max(overhead, ipipOverhead(v.Is6()))
	}
	if len(own) == 0 || clientMTU == 0 || overhead == 0 {
		return nil
	}
	var advice []string
	for _, l := range t.Links {
		if l.VXLAN == nil || !l.A.Node.Kind.spec().Encap && !l.B.Node.Kind.spec().Encap {
			continue
		}
		if need := clientMTU + overhead; l.MTU < need {
			advice = append(advice, fmt.Sprintf("link %s <-> %s crosses hosts with MTU %d, but a client's %d-byte packet takes %d once encapsulated: "+
				"the program on %s must answer larger ones with ICMP fragmentation needed, as dsrlab's balancer does, "+
				"or give the hosts a jumbo underlay (mtu: 9000 on each)", l.A, l.B, l.MTU, clientMTU, need, strings.Join(own, ", ")))
		}
	}
	return advice
}

// ipipOverhead is what the balancer's tunnel adds to a packet: an outer
// IPv4 or IPv6 header.
func ipipOverhead(v6 bool) int {
	if v6 {
		return 40
	}
	return 20
}
