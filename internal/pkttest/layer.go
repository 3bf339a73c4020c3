// Package pkttest runs packet tests of XDP programs, Katran- and
// Cilium-style: crafted packets in, BPF_PROG_TEST_RUN, the verdict, the
// output packet and map entries compared with what a case file expects.
//
// A packet is a list of layers, outermost first (eth, vlan, ipv4 or ipv6
// with its extension headers, the headers of an IP-in-IP tunnel or of the
// packet an ICMP error quotes, tcp/udp/icmp/icmpv6, payload). The same
// list is what a case file's packet builds, what a program's output is
// dissected into, and what an expectation is compared with field by field.
package pkttest

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/dsrlab/dsrlab/bpf/btfvalue"
)

// Layer is one header of a packet, or its payload.
type Layer struct {
	// Kind is eth, vlan, ipv4, ipv6, hop, dest, routing, frag, tcp, udp,
	// icmp, icmpv6 or payload; "ip" in an expectation that names no
	// address, which either family matches.
	Kind   string
	Fields []Field
	// Key is the name a case file gave the layer (ip, ipv4, vlan[1]...),
	// for messages; Line and Column are where.
	Key          string
	Line, Column int
	// Depth is 0 for the outer packet, one more inside each tunnel or
	// ICMP error.
	Depth int
	// Truncated: a dissected header the packet ends inside of (the
	// part of a packet an ICMP error quotes).
	Truncated bool
}

// Field is one field of a layer.
type Field struct {
	Name  string
	Value Value
	// Off and Len locate the field in a dissected packet, in bytes.
	Off, Len int
	// Line and Column place it in a case file, and Text is how it
	// writes the value (real:eth0 for an address).
	Line, Column int
	Text         string
	// minor fields (an echo's id in a "too big" message) are dissected,
	// so a test may name them, but not shown.
	minor bool
}

// Value is a field's value: a number, or bytes for addresses, MACs,
// options and payloads.
type Value struct {
	Num   uint64
	Bytes []byte
	// Check is set on checksums: in an expectation, checksum "ok" or
	// "bad"; in a dissected packet, whether it verified.
	Check checkState
}

type checkState uint8

const (
	checkNone checkState = iota
	checkOK
	checkBad
)

// Get returns the field called name.
func (l *Layer) Get(name string) (Field, bool) {
	for _, f := range l.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

func (l *Layer) num(name string, def uint64) uint64 {
	if f, ok := l.Get(name); ok {
		return f.Value.Num
	}
	return def
}

func (l *Layer) bytes(name string) []byte {
	f, _ := l.Get(name)
	return f.Value.Bytes
}

func (l *Layer) has(name string) bool {
	_, ok := l.Get(name)
	return ok
}

func (l *Layer) set(name string, v Value, off, n int) {
	l.Fields = append(l.Fields, Field{Name: name, Value: v, Off: off, Len: n})
}

// isIP tells the layers that open a new level of a packet: an IP header,
// the outer one or one inside a tunnel or an ICMP error.
func isIP(kind string) bool { return kind == "ipv4" || kind == "ipv6" || kind == "ip" }

func isExt(kind string) bool {
	return kind == "hop" || kind == "dest" || kind == "routing" || kind == "frag"
}

func isTransport(kind string) bool {
	return kind == "tcp" || kind == "udp" || kind == "icmp" || kind == "icmpv6"
}

// kind is how a field's value is written and compared.
type kind uint8

const (
	numK      kind = iota // an unsigned integer of def.bits bits
	macK                  // a MAC address
	addrK                 // an IPv4 or IPv6 address, by the layer
	boolK                 // a flag bit
	flagsK                // TCP flags: tcpdump's letters, or a number
	bytesK                // bytes in hex
	checksumK             // a 16-bit checksum: computed unless given
)

type fieldDef struct {
	name  string
	kind  kind
	bits  int
	names map[string]uint64 // symbolic values (proto: tcp)
	hex   bool              // shown in hex (EtherTypes)
}

var (
	etherTypes = map[string]uint64{"ipv4": 0x0800, "ipv6": 0x86dd, "arp": 0x0806, "vlan": 0x8100, "qinq": 0x88a8}
	protocols  = map[string]uint64{"hop": 0, "icmp": 1, "ipip": 4, "ipv4": 4, "tcp": 6, "udp": 17, "ipv6": 41,
		"routing": 43, "frag": 44, "icmpv6": 58, "none": 59, "dest": 60}
	icmpTypes = map[string]uint64{"echo-reply": 0, "unreachable": 3, "redirect": 5, "echo-request": 8,
		"time-exceeded": 11, "parameter-problem": 12}
	icmp6Types = map[string]uint64{"unreachable": 1, "too-big": 2, "time-exceeded": 3, "parameter-problem": 4,
		"echo-request": 128, "echo-reply": 129, "neighbor-solicitation": 135, "neighbor-advertisement": 136}
)

func num(name string, bits int) fieldDef { return fieldDef{name: name, kind: numK, bits: bits} }
func named(name string, bits int, names map[string]uint64) fieldDef {
	return fieldDef{name: name, kind: numK, bits: bits, names: names}
}
func of(name string, k kind) fieldDef { return fieldDef{name: name, kind: k} }

var etherType = fieldDef{name: "type", kind: numK, bits: 16, names: etherTypes, hex: true}

// layerFields are each layer's fields, in the order of the header.
var layerFields = map[string][]fieldDef{
	"eth":  {of("dst", macK), of("src", macK), etherType},
	"vlan": {num("pcp", 3), of("dei", boolK), num("id", 12), etherType},
	"ipv4": {of("src", addrK), of("dst", addrK), named("proto", 8, protocols), num("ttl", 8), num("tos", 8),
		num("len", 16), num("id", 16), of("df", boolK), of("mf", boolK), num("frag", 13), num("ihl", 4),
		of("checksum", checksumK), of("options", bytesK)},
	"ipv6": {of("src", addrK), of("dst", addrK), named("proto", 8, protocols), num("ttl", 8), num("tos", 8),
		num("len", 16), num("flow", 20)},
	// "ip" is either family: the fields both have.
	"ip":      {of("src", addrK), of("dst", addrK), named("proto", 8, protocols), num("ttl", 8), num("tos", 8), num("len", 16)},
	"hop":     {named("proto", 8, protocols), of("data", bytesK)},
	"dest":    {named("proto", 8, protocols), of("data", bytesK)},
	"routing": {named("proto", 8, protocols), num("type", 8), num("left", 8), of("data", bytesK)},
	"frag":    {named("proto", 8, protocols), num("offset", 13), of("more", boolK), num("id", 32)},
	"tcp": {num("sport", 16), num("dport", 16), of("flags", flagsK), num("seq", 32), num("ack", 32),
		num("win", 16), num("off", 4), num("urg", 16), of("checksum", checksumK), of("options", bytesK)},
	"udp": {num("sport", 16), num("dport", 16), num("len", 16), of("checksum", checksumK)},
	"icmp": {named("type", 8, icmpTypes), num("code", 8), num("id", 16), num("seq", 16), num("mtu", 16),
		num("rest", 32), of("checksum", checksumK)},
	"icmpv6": {named("type", 8, icmp6Types), num("code", 8), num("id", 16), num("seq", 16), num("mtu", 32),
		num("rest", 32), of("checksum", checksumK)},
	// A payload is its bytes; an expectation may name only its size.
	"payload": {of("data", bytesK), num("size", 32)},
}

func fieldDefOf(layer, name string) (fieldDef, bool) {
	for _, d := range layerFields[layer] {
		if d.name == name {
			return d, true
		}
	}
	return fieldDef{}, false
}

func fieldNames(layer string) string {
	var names []string
	for _, d := range layerFields[layer] {
		names = append(names, d.name)
	}
	return strings.Join(names, ", ")
}

// parseValue reads a field's value as a case file writes it. ipv6 says
// which family an address field of the layer holds.
func parseValue(d fieldDef, s string, ipv6 bool, r btfvalue.Resolver) (Value, error) {
	switch d.kind {
	case numK:
		if v, ok := d.names[strings.ToLower(s)]; ok {
			return Value{Num: v}, nil
		}
		n, err := parseNum(s, d.bits)
		if err != nil && len(d.names) > 0 {
			err = fmt.Errorf("%v, or one of: %s", err, strings.Join(sortedNames(d.names), ", "))
		}
		return Value{Num: n}, err
	case checksumK:
		switch strings.ToLower(s) {
		case "ok":
			return Value{Check: checkOK}, nil
		case "bad":
			return Value{Check: checkBad}, nil
		}
		n, err := parseNum(s, 16)
		return Value{Num: n}, err
	case boolK:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return Value{}, fmt.Errorf("%q is not true or false", s)
		}
		if b {
			return Value{Num: 1}, nil
		}
		return Value{}, nil
	case flagsK:
		return parseFlags(s)
	case bytesK:
		b, err := hex.DecodeString(strings.NewReplacer(" ", "", ":", "", "\n", "").Replace(s))
		if err != nil {
			return Value{}, fmt.Errorf("%q is not bytes in hex (\"0a0b0c\", spaces allowed)", s)
		}
		return Value{Bytes: b}, nil
	case macK:
		if mac, err := net.ParseMAC(s); err == nil && len(mac) == 6 {
			return Value{Bytes: mac}, nil
		}
		return resolve(s, 6, "a MAC (02:00:00:00:00:01)", r)
	case addrK:
		if a, err := netip.ParseAddr(s); err == nil {
			if a.Is4() == ipv6 {
				return Value{}, fmt.Errorf("%s is not an %s address", s, family(ipv6))
			}
			return Value{Bytes: a.AsSlice()}, nil
		}
		size := 4
		if ipv6 {
			size = 16
		}
		return resolve(s, size, "an "+family(ipv6)+" address", r)
	}
	return Value{}, fmt.Errorf("field %s has no parser", d.name)
}

func family(ipv6 bool) string {
	if ipv6 {
		return "IPv6"
	}
	return "IPv4"
}

func resolve(s string, size int, what string, r btfvalue.Resolver) (Value, error) {
	node, iface, ok := strings.Cut(s, ":")
	if !ok || node == "" || iface == "" || strings.Contains(iface, ":") {
		return Value{}, fmt.Errorf("%q is not %s or a NODE:IFACE of the lab", s, what)
	}
	if r == nil {
		return Value{}, fmt.Errorf("%s names an interface, and there is no lab to resolve it", s)
	}
	b, err := r(s, size)
	if err != nil {
		return Value{}, err
	}
	return Value{Bytes: b}, nil
}

func parseNum(s string, bits int) (uint64, error) {
	n, err := strconv.ParseUint(s, 0, 64)
	if strings.HasPrefix(s, "0") && !strings.HasPrefix(s, "0x") && len(s) > 1 {
		n, err = strconv.ParseUint(s, 10, 64) // 010 is ten, not octal
	}
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if bits < 64 && n >= 1<<bits {
		return 0, fmt.Errorf("%d is out of range: %d bits hold 0 to %d", n, bits, uint64(1)<<bits-1)
	}
	return n, nil
}

func sortedNames(m map[string]uint64) []string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// tcpFlagLetters are tcpdump's, bit 0 (FIN) first; "." and "A" both
// mean ACK, and "C" is CWR (tcpdump's "W").
const tcpFlagLetters = "FSRP.UEW"

func parseFlags(s string) (Value, error) {
	if n, err := strconv.ParseUint(s, 0, 8); err == nil {
		return Value{Num: n}, nil
	}
	var v uint64
	for _, c := range strings.ToUpper(s) {
		i := strings.IndexRune(tcpFlagLetters, c)
		switch c {
		case 'A':
			i = 4
		case 'C':
			i = 7
		}
		if i < 0 {
			return Value{}, fmt.Errorf("%q: TCP flags are letters of F S R P A (or .) U E C, e.g. S, SA, FA, or a number", s)
		}
		v |= 1 << i
	}
	return Value{Num: v}, nil
}

// formatFlags spells flags like tcpdump: "S", "S." for SYN-ACK, "." for
// a bare ACK.
func formatFlags(v uint64) string {
	var b strings.Builder
	for i := range 8 {
		if v&(1<<i) != 0 {
			b.WriteByte(tcpFlagLetters[i])
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// format writes a value as a case file would, so that what a diff shows
// can be pasted into one.
func format(d fieldDef, v Value) string {
	switch d.kind {
	case macK:
		return net.HardwareAddr(v.Bytes).String()
	case addrK:
		if a, ok := netip.AddrFromSlice(v.Bytes); ok {
			return a.String()
		}
		return hex.EncodeToString(v.Bytes)
	case boolK:
		return strconv.FormatBool(v.Num != 0)
	case flagsK:
		return formatFlags(v.Num)
	case bytesK:
		return hex.EncodeToString(v.Bytes)
	case checksumK:
		return fmt.Sprintf("0x%04x", v.Num)
	}
	if d.hex {
		return fmt.Sprintf("0x%04x", v.Num)
	}
	return strconv.FormatUint(v.Num, 10)
}

// equal compares a dissected value with an expected one.
func equal(d fieldDef, got, want Value) bool {
	switch d.kind {
	case checksumK:
		switch want.Check {
		case checkOK:
			return got.Check == checkOK
		case checkBad:
			return got.Check == checkBad
		}
		return got.Num == want.Num
	case macK, addrK, bytesK:
		return string(got.Bytes) == string(want.Bytes)
	}
	return got.Num == want.Num
}

// describe is a value for a diff, as format writes it; a dissected
// checksum says whether it verified, an expected one may be "ok" or "bad".
func describe(d fieldDef, v Value, dissected bool) string {
	if d.kind != checksumK {
		return format(d, v)
	}
	if !dissected && v.Check != checkNone {
		return map[checkState]string{checkOK: "ok", checkBad: "bad"}[v.Check]
	}
	s := format(d, v)
	switch {
	case dissected && v.Check == checkOK:
		s += " (ok)"
	case dissected && v.Check == checkBad:
		s += " (bad)"
	}
	return s
}
