package filter

import (
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"
)

// LinkType is what a frame starts with; the values are pcap's LINKTYPE_*
// numbers, so capture files can use them as they are.
type LinkType uint16

const (
	// Ethernet frames, as on veth and loopback devices.
	Ethernet LinkType = 1
	// RawIP packets with no link header, as on ipip (tunl) devices.
	RawIP LinkType = 101
)

// Snaplen is what an accepting program returns: the bytes of a packet to
// keep. Like tcpdump's default, it is more than any GSO packet.
const Snaplen = 262144

// maxInstructions is the kernel's BPF_MAXINSNS for classic programs.
const maxInstructions = 4096

// Compile compiles a tcpdump-style expression into a classic BPF program
// for packets of the given link type. An empty expression accepts all.
//
// Supported: host, net (CIDR, or ADDR mask MASK), port, portrange, each
// with src, dst, "src or dst", "src and dst", and ip/ip6/arp (host, net)
// or tcp/udp/sctp (port) qualifiers; tcp, udp, sctp, icmp, icmp6, ip, ip6,
// arp; [ip|ip6] proto N; and, or, not (&&, ||, !), parentheses. As in
// tcpdump, host and net match the outermost IP header only (an IPIP packet
// matches its outer addresses) and, for IPv4 without "ip", the addresses
// of ARP packets too; ports are read only from unfragmented
// packets or first fragments, IPv6 ports only right after the fixed
// header, and "and"/"or" group left to right with equal precedence.
func Compile(expr string, link LinkType) ([]bpf.Instruction, error) {
	if link != Ethernet && link != RawIP {
		return nil, fmt.Errorf("filter: link type %d is not supported (want Ethernet or raw IP)", link)
	}
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	var root node = constant(true)
	if len(toks) > 0 {
		p := &parser{expr: expr, toks: toks, link: linkLayer(link)}
		if root, err = p.parseExpr(); err != nil {
			return nil, err
		}
		if !p.done() {
			return nil, p.errorf(p.pos(), "unexpected %q (join primitives with and, or)", p.peek())
		}
	}
	var g gen
	accept, reject := g.label(), g.label()
	g.cond(root, accept, reject)
	g.mark(accept)
	g.emit(bpf.RetConstant{Val: Snaplen})
	g.mark(reject)
	g.emit(bpf.RetConstant{Val: 0})
	prog := g.layout()
	if len(prog) > maxInstructions {
		return nil, fmt.Errorf("filter %s: %d instructions, more than the kernel's limit of %d", excerpt(expr, 0), len(prog), maxInstructions)
	}
	return prog, nil
}

// The expression is first turned into a tree of boolean operators over
// single comparisons ("the 16-bit word at offset 12 equals 0x800"), then
// into jumping code: each comparison jumps straight to where the answer
// is decided, so no result is ever kept in a register.
type node interface{ isNode() }

type (
	andNode  struct{ l, r node }
	orNode   struct{ l, r node }
	notNode  struct{ x node }
	constant bool
	// test loads a value into A (loads may also set X first) and
	// compares it with val.
	test struct {
		loads []bpf.Instruction
		cond  bpf.JumpTest
		val   uint32
	}
)

func (andNode) isNode()  {}
func (orNode) isNode()   {}
func (notNode) isNode()  {}
func (constant) isNode() {}
func (test) isNode()     {}

func and(l, r node) node {
	if c, ok := l.(constant); ok {
		if c {
			return r
		}
		return l
	}
	if c, ok := r.(constant); ok && bool(c) {
		return l
	}
	return andNode{l, r}
}

func or(l, r node) node {
	if c, ok := l.(constant); ok {
		if c {
			return l
		}
		return r
	}
	if c, ok := r.(constant); ok && !bool(c) {
		return l
	}
	return orNode{l, r}
}

func not(x node) node {
	if c, ok := x.(constant); ok {
		return !c
	}
	return notNode{x}
}

func all(ns ...node) node {
	var n node = constant(true)
	for _, x := range ns {
		n = and(n, x)
	}
	return n
}

// linkLayer knows where the network header starts and how to tell IPv4
// from IPv6 for one link type.
type linkLayer LinkType

const (
	etherTypeOffset = 12
	etherHeaderLen  = 14
)

func (l linkLayer) l3() uint32 {
	if LinkType(l) == Ethernet {
		return etherHeaderLen
	}
	return 0
}

func (l linkLayer) family(etherType uint16, version uint32) node {
	if LinkType(l) == Ethernet {
		return test{loads: []bpf.Instruction{bpf.LoadAbsolute{Off: etherTypeOffset, Size: 2}}, cond: bpf.JumpEqual, val: uint32(etherType)}
	}
	return test{loads: []bpf.Instruction{
		bpf.LoadAbsolute{Off: 0, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf0},
	}, cond: bpf.JumpEqual, val: version << 4}
}

func (l linkLayer) isIPv4() node { return l.family(0x0800, 4) }
func (l linkLayer) isIPv6() node { return l.family(0x86dd, 6) }

func (l linkLayer) isARP() node {
	if LinkType(l) != Ethernet {
		return constant(false)
	}
	return l.family(0x0806, 0)
}

// field compares the masked big-endian value at off from the network
// header; a zero mask means the whole value.
func (l linkLayer) field(off uint32, size int, mask uint32, cond bpf.JumpTest, val uint32) node {
	loads := []bpf.Instruction{bpf.LoadAbsolute{Off: l.l3() + off, Size: size}}
	if mask != 0 {
		loads = append(loads, bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask})
	}
	return test{loads: loads, cond: cond, val: val}
}

func (l linkLayer) ip4Proto(p uint8) node {
	return and(l.isIPv4(), l.field(9, 1, 0, bpf.JumpEqual, uint32(p)))
}

func (l linkLayer) ip6Next(p uint8) node {
	return and(l.isIPv6(), l.field(6, 1, 0, bpf.JumpEqual, uint32(p)))
}

func directed(d direction, srcTest, dstTest node) node {
	switch d {
	case src:
		return srcTest
	case dst:
		return dstTest
	case srcAndDst:
		return and(srcTest, dstTest)
	}
	return or(srcTest, dstTest)
}

// addr matches a host or net in the outermost IP header or, as libpcap
// does for IPv4 unless told "ip", in an ARP packet's sender (src) and
// target (dst) addresses.
func (l linkLayer) addr(p netip.Prefix, d direction, proto string) node {
	if p.Addr().Is6() {
		return l.addrAt(l.isIPv6(), 8, 24, p, d)
	}
	var n node = constant(false)
	if proto != "arp" {
		n = l.addrAt(l.isIPv4(), 12, 16, p, d)
	}
	if proto != "ip" {
		n = or(n, l.addrAt(l.isARP(), 14, 24, p, d))
	}
	return n
}

func (l linkLayer) addrAt(family node, srcOff, dstOff uint32, p netip.Prefix, d direction) node {
	a := p.Addr().AsSlice()
	// One comparison per 32-bit word, skipping the words the prefix
	// leaves free.
	match := func(off uint32) node {
		var n node = constant(true)
		for w := 0; w*32 < p.Bits(); w++ {
			bits := min(p.Bits()-w*32, 32)
			mask := ^uint32(0) << (32 - bits)
			val := uint32(a[4*w])<<24 | uint32(a[4*w+1])<<16 | uint32(a[4*w+2])<<8 | uint32(a[4*w+3])
			if mask == ^uint32(0) {
				mask = 0
			}
			n = and(n, l.field(off+uint32(4*w), 4, mask, bpf.JumpEqual, val))
		}
		return n
	}
	return and(family, directed(d, match(srcOff), match(dstOff)))
}

// ports matches a port range of the given transport protocols, over IPv4
// (options skipped with ldx msh, non-first fragments excluded: they carry
// no ports) and over IPv6 (ports right after the fixed header).
func (l linkLayer) ports(protos []uint8, lo, hi uint16, d direction) node {
	inRange := func(load func() []bpf.Instruction) node {
		if lo == hi {
			return test{loads: load(), cond: bpf.JumpEqual, val: uint32(lo)}
		}
		return and(test{loads: load(), cond: bpf.JumpGreaterOrEqual, val: uint32(lo)},
			test{loads: load(), cond: bpf.JumpLessOrEqual, val: uint32(hi)})
	}
	port4 := func(off uint32) node {
		return inRange(func() []bpf.Instruction {
			return []bpf.Instruction{bpf.LoadMemShift{Off: l.l3()}, bpf.LoadIndirect{Off: l.l3() + off, Size: 2}}
		})
	}
	port6 := func(off uint32) node {
		return inRange(func() []bpf.Instruction {
			return []bpf.Instruction{bpf.LoadAbsolute{Off: l.l3() + 40 + off, Size: 2}}
		})
	}
	var proto4, proto6 node = constant(false), constant(false)
	for _, p := range protos {
		proto4 = or(proto4, l.field(9, 1, 0, bpf.JumpEqual, uint32(p)))
		proto6 = or(proto6, l.field(6, 1, 0, bpf.JumpEqual, uint32(p)))
	}
	firstFragment := not(l.field(6, 2, 0, bpf.JumpBitsSet, 0x1fff))
	return or(
		all(l.isIPv4(), proto4, firstFragment, directed(d, port4(0), port4(2))),
		all(l.isIPv6(), proto6, directed(d, port6(0), port6(2))),
	)
}

// gen lays jumping code out with symbolic labels; layout resolves them.
type gen struct {
	items   []item
	nlabels int
}

type itemKind int

const (
	plain itemKind = iota
	condJump
	jump
	mark
)

type item struct {
	kind  itemKind
	ins   bpf.Instruction // plain
	cond  bpf.JumpTest    // condJump
	val   uint32          // condJump
	t, f  int             // condJump targets; jump uses t; mark places t
	longT bool            // the target is too far for 8 bits: go through a ja
	longF bool
}

func (g *gen) label() int {
	g.nlabels++
	return g.nlabels - 1
}

func (g *gen) emit(ins bpf.Instruction) { g.items = append(g.items, item{kind: plain, ins: ins}) }
func (g *gen) mark(l int)               { g.items = append(g.items, item{kind: mark, t: l}) }

func (g *gen) cond(n node, t, f int) {
	switch n := n.(type) {
	case constant:
		to := f
		if n {
			to = t
		}
		g.items = append(g.items, item{kind: jump, t: to})
	case test:
		for _, ins := range n.loads {
			g.emit(ins)
		}
		g.items = append(g.items, item{kind: condJump, cond: n.cond, val: n.val, t: t, f: f})
	case notNode:
		g.cond(n.x, f, t)
	case andNode:
		m := g.label()
		g.cond(n.l, m, f)
		g.mark(m)
		g.cond(n.r, t, f)
	case orNode:
		m := g.label()
		g.cond(n.l, t, m)
		g.mark(m)
		g.cond(n.r, t, f)
	}
}

func (it item) size() int {
	switch it.kind {
	case mark:
		return 0
	case condJump:
		n := 1
		if it.longT {
			n++
		}
		if it.longF {
			n++
		}
		return n
	}
	return 1
}

// layout resolves labels into skips. A conditional jump skips at most 255
// instructions; one whose target is farther jumps to an unconditional ja
// (32-bit offset) placed right after it. Adding those moves later code,
// so this repeats until nothing else needs one; it ends because a jump
// only ever gains trampolines.
func (g *gen) layout() []bpf.Instruction {
	g.dropJumpsToNext()
	pos := make([]int, len(g.items))
	at := make([]int, g.nlabels)
	for changed := true; changed; {
		n := 0
		for i, it := range g.items {
			pos[i] = n
			if it.kind == mark {
				at[it.t] = n
			}
			n += it.size()
		}
		changed = false
		for i := range g.items {
			it := &g.items[i]
			if it.kind != condJump {
				continue
			}
			if !it.longT && at[it.t]-pos[i]-1 > 255 {
				it.longT, changed = true, true
			}
			if !it.longF && at[it.f]-pos[i]-1 > 255 {
				it.longF, changed = true, true
			}
		}
	}
	var prog []bpf.Instruction
	for i, it := range g.items {
		next := pos[i] + 1
		switch it.kind {
		case plain:
			prog = append(prog, it.ins)
		case jump:
			prog = append(prog, bpf.Jump{Skip: uint32(at[it.t] - next)})
		case condJump:
			skipT, skipF := at[it.t]-next, at[it.f]-next
			var tramps []bpf.Instruction
			if it.longT {
				skipT = len(tramps)
				tramps = append(tramps, bpf.Jump{Skip: uint32(at[it.t] - next - len(tramps) - 1)})
			}
			if it.longF {
				skipF = len(tramps)
				tramps = append(tramps, bpf.Jump{Skip: uint32(at[it.f] - next - len(tramps) - 1)})
			}
			prog = append(prog, bpf.JumpIf{Cond: it.cond, Val: it.val, SkipTrue: uint8(skipT), SkipFalse: uint8(skipF)})
			prog = append(prog, tramps...)
		}
	}
	return prog
}

// dropJumpsToNext removes unconditional jumps to the very next
// instruction, which constant branches of the tree leave behind.
func (g *gen) dropJumpsToNext() {
	kept := g.items[:0]
	for i, it := range g.items {
		if it.kind == jump && landsNext(g.items[i+1:], it.t) {
			continue
		}
		kept = append(kept, it)
	}
	g.items = kept
}

func landsNext(rest []item, l int) bool {
	for _, it := range rest {
		if it.kind != mark {
			return false
		}
		if it.t == l {
			return true
		}
	}
	return false
}
