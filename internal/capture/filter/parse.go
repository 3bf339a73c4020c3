// Package filter compiles tcpdump-style capture filters to classic BPF, in
// Go: no libpcap, no cgo. It covers the part of the pcap-filter language a
// load-balancer lab needs (hosts, nets, ports, IP protocols, boolean
// operators) and follows tcpdump's semantics for it, so an expression that
// works with tcpdump -i means the same thing here.
package filter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// SyntaxError is a filter that does not parse, or names something that
// cannot be matched; Pos is the byte offset of the offending token.
type SyntaxError struct {
	Expr string
	Pos  int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("filter %s: column %d: %s", excerpt(e.Expr, e.Pos), e.Pos+1, e.Msg)
}

// maxQuoted is how much of an expression an error quotes: a filter built
// by a script can be kilobytes long, and the error only needs the part
// around the problem.
const maxQuoted = 64

// excerpt quotes expr, or the part of a long one around byte pos, saying
// how long the whole is.
func excerpt(expr string, pos int) string {
	if len(expr) <= maxQuoted {
		return strconv.Quote(expr)
	}
	start := min(max(pos-maxQuoted/2, 0), len(expr)-maxQuoted)
	q := strconv.Quote(expr[start : start+maxQuoted])
	if start > 0 {
		q = "..." + q
	}
	if start+maxQuoted < len(expr) {
		q += "..."
	}
	return fmt.Sprintf("%s (%d bytes)", q, len(expr))
}

type token struct {
	text string
	pos  int
}

// lex splits an expression into words and the operators that need no
// spaces around them: ( ) ! && ||.
func lex(expr string) ([]token, error) {
	var toks []token
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '(' || c == ')' || c == '!':
			toks = append(toks, token{expr[i : i+1], i})
			i++
		case c == '&' || c == '|':
			if i+1 >= len(expr) || expr[i+1] != c {
				return nil, &SyntaxError{expr, i, fmt.Sprintf("%q: did you mean %q?", c, string([]byte{c, c}))}
			}
			toks = append(toks, token{expr[i : i+2], i})
			i += 2
		default:
			j := i
			for j < len(expr) && !strings.ContainsRune(" \t\n()!&|", rune(expr[j])) {
				j++
			}
			toks = append(toks, token{expr[i:j], i})
			i = j
		}
	}
	return toks, nil
}

// direction is the src/dst qualifier of host, net and port.
type direction int

const (
	srcOrDst direction = iota // tcpdump's default
	src
	dst
	srcAndDst
)

// qualifiers of a primitive. tcpdump lets "host a or b" reuse the last
// primitive's qualifiers for a bare b, so they are kept between primitives.
type qualifiers struct {
	proto string // "", ip, ip6, arp, tcp, udp or sctp
	dir   direction
	kind  string // host, net, port or portrange
}

type parser struct {
	expr string
	toks []token
	i    int
	link linkLayer
	last *qualifiers
}

func (p *parser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i].text
	}
	return ""
}

func (p *parser) pos() int {
	if p.i < len(p.toks) {
		return p.toks[p.i].pos
	}
	return len(p.expr)
}

func (p *parser) errorf(pos int, format string, args ...any) error {
	return &SyntaxError{p.expr, pos, fmt.Sprintf(format, args...)}
}

func (p *parser) next() token {
	t := p.toks[p.i]
	p.i++
	return t
}

func (p *parser) done() bool { return p.i >= len(p.toks) }

// parseExpr follows tcpdump: "and" and "or" have the same precedence and
// group left to right ("a or b and c" is "(a or b) and c"); "not" binds
// tighter than both.
func (p *parser) parseExpr() (node, error) {
	l, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for {
		op := p.peek()
		if op != "and" && op != "&&" && op != "or" && op != "||" {
			return l, nil
		}
		p.next()
		r, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		if op == "and" || op == "&&" {
			l = and(l, r)
		} else {
			l = or(l, r)
		}
	}
}

func (p *parser) parseUnary() (node, error) {
	switch p.peek() {
	case "":
		return nil, p.errorf(p.pos(), "unexpected end of expression")
	case "not", "!":
		p.next()
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return not(x), nil
	case "(":
		open := p.next()
		x, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			if p.done() {
				return nil, p.errorf(open.pos, "unclosed parenthesis")
			}
			return nil, p.errorf(p.pos(), "expected \")\", got %q", p.peek())
		}
		p.next()
		return x, nil
	}
	return p.parsePrimitive()
}

var (
	protoWords = map[string]bool{"ip": true, "ip6": true, "tcp": true, "udp": true, "sctp": true, "icmp": true, "icmp6": true, "arp": true}
	kindWords  = map[string]bool{"host": true, "net": true, "port": true, "portrange": true}
	reserved   = map[string]bool{"and": true, "or": true, "not": true, "src": true, "dst": true, "proto": true, "mask": true, "(": true, ")": true, "!": true, "&&": true, "||": true}
)

func isDir(w string) bool { return w == "src" || w == "dst" }

func (p *parser) parsePrimitive() (node, error) {
	var q qualifiers
	qualified := false
	start := p.pos()
	if w := p.peek(); protoWords[w] {
		p.next()
		if (w == "ip" || w == "ip6") && p.peek() == "proto" {
			p.next()
			return p.parseProto(w)
		}
		if !isDir(p.peek()) && !kindWords[p.peek()] {
			return p.protoTest(w), nil
		}
		if w == "icmp" || w == "icmp6" {
			return nil, p.errorf(start, "%q cannot qualify %q", w, p.peek())
		}
		q.proto, qualified = w, true
	} else if w == "proto" {
		p.next()
		return p.parseProto("")
	}
	if isDir(p.peek()) {
		q.dir, qualified = p.parseDir(), true
	}
	if kindWords[p.peek()] {
		q.kind, qualified = p.next().text, true
	}
	if !qualified && p.last != nil && !reserved[p.peek()] {
		q = *p.last // "host a or b": b inherits "host"
	}
	idPos := p.pos()
	id, err := p.expectID(q.kind)
	if err != nil {
		return nil, err
	}
	if q.kind == "" {
		switch {
		case strings.Contains(id, "/"):
			q.kind = "net"
		case isAddr(id):
			q.kind = "host"
		default:
			return nil, p.errorf(idPos, "%q: expected a primitive (host, net, port, proto, tcp, udp, icmp, ip, ip6...)", id)
		}
	}
	if !compatible(q.proto, q.kind) {
		return nil, p.errorf(start, "%q cannot qualify %q", q.proto, q.kind)
	}
	n, err := p.build(q, id, idPos)
	if err != nil {
		return nil, err
	}
	p.last = &q
	return n, nil
}

// parseDir reads src, dst, "src or dst" or "src and dst"; the operator
// belongs to the qualifier only when another direction follows it.
func (p *parser) parseDir() direction {
	d := src
	if p.next().text == "dst" {
		d = dst
	}
	if op := p.peek(); (op == "or" || op == "and") && p.i+1 < len(p.toks) && isDir(p.toks[p.i+1].text) {
		p.next()
		p.next()
		if op == "or" {
			return srcOrDst
		}
		return srcAndDst
	}
	return d
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

func (p *parser) expectID(after string) (string, error) {
	if p.done() || reserved[p.peek()] {
		what := "an address or a number"
		if after != "" {
			what = fmt.Sprintf("a value after %q", after)
		}
		if p.done() {
			return "", p.errorf(p.pos(), "expected %s, got the end of the expression", what)
		}
		return "", p.errorf(p.pos(), "expected %s, got %q", what, p.peek())
	}
	return p.next().text, nil
}

var protoNumbers = map[string]uint8{"icmp": 1, "ipip": 4, "tcp": 6, "udp": 17, "ipv6": 41, "gre": 47, "icmp6": 58, "sctp": 132}

// parseProto reads the number or name after [ip|ip6] proto; tcpdump wants
// names escaped (\tcp), so a leading backslash is accepted and dropped.
func (p *parser) parseProto(family string) (node, error) {
	pos := p.pos()
	id, err := p.expectID("proto")
	if err != nil {
		return nil, err
	}
	name := strings.TrimPrefix(id, `\`)
	num, ok := protoNumbers[name]
	if !ok {
		v, err := strconv.ParseUint(name, 0, 8)
		if err != nil {
			return nil, p.errorf(pos, "proto %q: want a number 0-255 or one of icmp, ipip, tcp, udp, ipv6, gre, icmp6, sctp", id)
		}
		num = uint8(v)
	}
	l := p.link
	switch family {
	case "ip":
		return l.ip4Proto(num), nil
	case "ip6":
		return l.ip6Next(num), nil
	}
	return or(l.ip4Proto(num), l.ip6Next(num)), nil
}

func (p *parser) protoTest(w string) node {
	l := p.link
	switch w {
	case "ip":
		return l.isIPv4()
	case "ip6":
		return l.isIPv6()
	case "arp":
		return l.isARP()
	case "icmp":
		return l.ip4Proto(1)
	case "icmp6":
		return l.ip6Next(58)
	}
	n := protoNumbers[w]
	return or(l.ip4Proto(n), l.ip6Next(n))
}

// compatible says whether a protocol can qualify a kind of primitive:
// addresses belong to ip and ip6, ports to the transport protocols.
func compatible(proto, kind string) bool {
	if proto == "" {
		return true
	}
	if kind == "host" || kind == "net" {
		return proto == "ip" || proto == "ip6" || proto == "arp"
	}
	return proto == "tcp" || proto == "udp" || proto == "sctp"
}

func (p *parser) build(q qualifiers, id string, pos int) (node, error) {
	switch q.kind {
	case "host", "net":
		prefix, err := p.parsePrefix(q.kind, id, pos)
		if err != nil {
			return nil, err
		}
		if v4 := prefix.Addr().Is4(); (q.proto != "ip6" && q.proto != "" && !v4) || (q.proto == "ip6" && v4) {
			return nil, p.errorf(pos, "%s %s: %s is not an %s address", q.proto, q.kind, id, map[bool]string{true: "IPv6", false: "IPv4"}[q.proto == "ip6"])
		}
		return p.link.addr(prefix, q.dir, q.proto), nil
	case "port", "portrange":
		lo, hi, err := p.parsePorts(q.kind, id, pos)
		if err != nil {
			return nil, err
		}
		protos := []uint8{6, 17, 132}
		if q.proto != "" {
			protos = []uint8{protoNumbers[q.proto]}
		}
		return p.link.ports(protos, lo, hi, q.dir), nil
	}
	return nil, p.errorf(pos, "unknown primitive %q", q.kind)
}

// parsePrefix reads a host address, or a net as a CIDR, a bare address
// (all bits) or "A.B.C.D mask M.M.M.M". Names are not resolved: a lab's
// filter should not depend on the capturing host's DNS.
func (p *parser) parsePrefix(kind, id string, pos int) (netip.Prefix, error) {
	if kind == "host" {
		a, err := netip.ParseAddr(id)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, p.errorf(pos, "host %q: not an IP address (names are not resolved)", id)
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	var prefix netip.Prefix
	if strings.Contains(id, "/") {
		var err error
		if prefix, err = netip.ParsePrefix(id); err != nil {
			return prefix, p.errorf(pos, "net %q: not a CIDR prefix", id)
		}
	} else {
		a, err := netip.ParseAddr(id)
		if err != nil {
			return prefix, p.errorf(pos, "net %q: not an address or a CIDR prefix", id)
		}
		prefix = netip.PrefixFrom(a, a.BitLen())
		if p.peek() == "mask" {
			p.next()
			mpos := p.pos()
			m, err := p.expectID("mask")
			if err != nil {
				return prefix, err
			}
			bits, ok := maskBits(m)
			if !ok || !a.Is4() {
				return prefix, p.errorf(mpos, "mask %q: want a contiguous IPv4 netmask after an IPv4 net", m)
			}
			prefix = netip.PrefixFrom(a, bits)
		}
	}
	if prefix.Masked() != prefix {
		return prefix, p.errorf(pos, "net %s: non-network bits set (did you mean %s?)", id, prefix.Masked())
	}
	return prefix, nil
}

func maskBits(s string) (int, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, false
	}
	b := a.As4()
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := 0
	for m&0x80000000 != 0 {
		m <<= 1
		ones++
	}
	return ones, m == 0
}

func (p *parser) parsePorts(kind, id string, pos int) (lo, hi uint16, err error) {
	parse := func(s string) (uint16, error) {
		v, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			return 0, p.errorf(pos, "%s %q: want a number 0-65535 (service names are not resolved)", kind, id)
		}
		return uint16(v), nil
	}
	if kind == "port" {
		lo, err = parse(id)
		return lo, lo, err
	}
	a, b, ok := strings.Cut(id, "-")
	if !ok {
		return 0, 0, p.errorf(pos, "portrange %q: want LOW-HIGH", id)
	}
	if lo, err = parse(a); err != nil {
		return 0, 0, err
	}
	if hi, err = parse(b); err != nil {
		return 0, 0, err
	}
	if lo > hi {
		lo, hi = hi, lo // as tcpdump does
	}
	return lo, hi, nil
}
