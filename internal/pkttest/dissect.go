package pkttest

import "encoding/binary"

// Dissect reads an Ethernet frame into layers, every field located by its
// bytes: eth, 802.1Q/802.1ad tags, IPv4, IPv6 and its extension headers,
// IP in IP of either family, TCP, UDP, ICMP and ICMPv6 (with the packet an
// error quotes), and what is left as payload. It never fails: a header the
// frame ends inside of is read as far as it goes and marked Truncated, and
// whatever cannot be read is payload.
func Dissect(b []byte) []Layer {
	d := dissector{b: b}
	d.eth()
	return d.layers
}

type dissector struct {
	b      []byte
	off    int
	layers []Layer
}

// push adds a layer, at the depth of the IP headers before it: each one
// after the first opens an inner packet.
func (d *dissector) push(l Layer) {
	ips := 0
	for _, p := range d.layers {
		if isIP(p.Kind) {
			ips++
		}
	}
	if isIP(l.Kind) {
		ips++
	}
	l.Depth = max(ips-1, 0)
	d.layers = append(d.layers, l)
}

func (d *dissector) left() int { return len(d.b) - d.off }

// field adds a field of n bytes at rel bytes into the current header
// (starting at base), when the frame holds it; v reads its value.
func (d *dissector) field(l *Layer, base, rel, n int, name string, v func([]byte) Value) bool {
	if base+rel+n > len(d.b) {
		l.Truncated = true
		return false
	}
	l.set(name, v(d.b[base+rel:base+rel+n]), base+rel, n)
	return true
}

func numv(b []byte) Value {
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return Value{Num: n}
}

func bytesv(b []byte) Value { return Value{Bytes: append([]byte(nil), b...)} }

func bits(shift, width uint) func([]byte) Value {
	return func(b []byte) Value { return Value{Num: numv(b).Num >> shift & (1<<width - 1)} }
}

func (d *dissector) payload() {
	if d.left() > 0 {
		l := Layer{Kind: "payload"}
		l.set("data", bytesv(d.b[d.off:]), d.off, d.left())
		l.set("size", Value{Num: uint64(d.left())}, d.off, d.left())
		l.Fields[1].minor = true
		d.push(l)
		d.off = len(d.b)
	}
}

func (d *dissector) eth() {
	l := Layer{Kind: "eth"}
	base := d.off
	d.field(&l, base, 0, 6, "dst", bytesv)
	d.field(&l, base, 6, 6, "src", bytesv)
	if !d.field(&l, base, 12, 2, "type", numv) {
		d.push(l)
		d.payload()
		return
	}
	d.push(l)
	d.off += 14
	d.etherPayload(l.num("type", 0))
}

func (d *dissector) etherPayload(etherType uint64) {
	switch etherType {
	case 0x8100, 0x88a8:
		l := Layer{Kind: "vlan"}
		base := d.off
		d.field(&l, base, 0, 2, "pcp", bits(13, 3))
		d.field(&l, base, 0, 2, "dei", bits(12, 1))
		d.field(&l, base, 0, 2, "id", bits(0, 12))
		ok := d.field(&l, base, 2, 2, "type", numv)
		d.push(l)
		if ok {
			d.off += 4
			d.etherPayload(l.num("type", 0))
			return
		}
	case 0x0800, 0x86dd:
		d.ip()
		return
	}
	d.payload()
}

// ip reads an IP header of the version its first nibble says, and what it
// carries.
func (d *dissector) ip() {
	if d.left() < 1 {
		return
	}
	switch d.b[d.off] >> 4 {
	case 4:
		d.ipv4()
	case 6:
		d.ipv6()
	default:
		d.payload()
	}
}

func (d *dissector) ipv4() {
	l := Layer{Kind: "ipv4"}
	base := d.off
	for _, f := range []struct {
		rel, n int
		name   string
		v      func([]byte) Value
	}{
		{12, 4, "src", bytesv}, {16, 4, "dst", bytesv}, {9, 1, "proto", numv}, {8, 1, "ttl", numv},
		{1, 1, "tos", numv}, {2, 2, "len", numv}, {4, 2, "id", numv}, {6, 2, "df", bits(14, 1)},
		{6, 2, "mf", bits(13, 1)}, {6, 2, "frag", bits(0, 13)}, {0, 1, "ihl", bits(0, 4)}, {10, 2, "checksum", numv},
	} {
		d.field(&l, base, f.rel, f.n, f.name, f.v)
	}
	if l.Truncated {
		d.push(l)
		d.off = len(d.b)
		return
	}
	hl := int(l.num("ihl", 5)) * 4
	if hl < 20 || hl > d.left() {
		l.Truncated = true
		d.push(l)
		d.off += 20
		d.payload()
		return
	}
	if hl > 20 {
		l.set("options", bytesv(d.b[base+20:base+hl]), base+20, hl-20)
	}
	setCheck(&l, checksum(d.b[base:base+hl], 0) == 0)
	// Ethernet padding after the IP packet is not its payload.
	if total := int(l.num("len", 0)); total >= hl && total < d.left() {
		d.b = d.b[:base+total]
	}
	d.push(l)
	d.off += hl
	if l.num("frag", 0) != 0 {
		d.payload() // a later fragment: no transport header
		return
	}
	d.next(l.num("proto", 0))
}

func setCheck(l *Layer, ok bool) {
	for i := range l.Fields {
		if l.Fields[i].Name == "checksum" {
			l.Fields[i].Value.Check = checkBad
			if ok {
				l.Fields[i].Value.Check = checkOK
			}
		}
	}
}

func (d *dissector) ipv6() {
	l := Layer{Kind: "ipv6"}
	base := d.off
	d.field(&l, base, 8, 16, "src", bytesv)
	d.field(&l, base, 24, 16, "dst", bytesv)
	d.field(&l, base, 6, 1, "proto", numv)
	d.field(&l, base, 7, 1, "ttl", numv)
	d.field(&l, base, 0, 4, "tos", bits(20, 8))
	d.field(&l, base, 4, 2, "len", numv)
	d.field(&l, base, 0, 4, "flow", bits(0, 20))
	d.push(l)
	if l.Truncated {
		d.off = len(d.b)
		return
	}
	if plen := int(l.num("len", 0)); plen < d.left()-40 {
		d.b = d.b[:base+40+plen]
	}
	d.off += 40
	d.next(l.num("proto", 0))
}

// next reads what an IP or extension header announces.
func (d *dissector) next(proto uint64) {
	switch proto {
	case 0, 43, 44, 60:
		d.ext(proto)
	case 4, 41:
		d.ip()
	case 6, 17, 1, 58:
		d.transport(proto)
	default:
		d.payload()
	}
}

var extKinds = map[uint64]string{0: "hop", 43: "routing", 44: "frag", 60: "dest"}

func (d *dissector) ext(proto uint64) {
	l := Layer{Kind: extKinds[proto]}
	base := d.off
	if !d.field(&l, base, 0, 1, "proto", numv) || d.left() < 8 {
		l.Truncated = true
		d.push(l)
		d.payload()
		return
	}
	n := 8
	if l.Kind == "frag" {
		d.field(&l, base, 2, 2, "offset", bits(3, 13))
		d.field(&l, base, 2, 2, "more", bits(0, 1))
		d.field(&l, base, 4, 4, "id", numv)
	} else {
		n = (int(d.b[base+1]) + 1) * 8
		if n > d.left() {
			l.Truncated = true
			d.push(l)
			d.off++
			d.payload()
			return
		}
		dataAt := 2
		if l.Kind == "routing" {
			d.field(&l, base, 2, 1, "type", numv)
			d.field(&l, base, 3, 1, "left", numv)
			dataAt = 4
		}
		l.set("data", bytesv(d.b[base+dataAt:base+n]), base+dataAt, n-dataAt)
	}
	d.push(l)
	d.off += n
	if l.Kind == "frag" && l.num("offset", 0) != 0 {
		d.payload()
		return
	}
	d.next(l.num("proto", 0))
}

func (d *dissector) transport(proto uint64) {
	ipLayer := d.lastIP()
	base := d.off
	var l Layer
	hl := 8
	sumAt := 0
	switch proto {
	case 6:
		l = Layer{Kind: "tcp"}
		d.field(&l, base, 0, 2, "sport", numv)
		d.field(&l, base, 2, 2, "dport", numv)
		d.field(&l, base, 13, 1, "flags", numv)
		d.field(&l, base, 4, 4, "seq", numv)
		d.field(&l, base, 8, 4, "ack", numv)
		d.field(&l, base, 14, 2, "win", numv)
		d.field(&l, base, 12, 1, "off", bits(4, 4))
		d.field(&l, base, 18, 2, "urg", numv)
		d.field(&l, base, 16, 2, "checksum", numv)
		hl, sumAt = int(l.num("off", 5))*4, 16
		if !l.Truncated && hl > 20 && hl <= d.left() {
			l.set("options", bytesv(d.b[base+20:base+hl]), base+20, hl-20)
		}
	case 17:
		l = Layer{Kind: "udp"}
		d.field(&l, base, 0, 2, "sport", numv)
		d.field(&l, base, 2, 2, "dport", numv)
		d.field(&l, base, 4, 2, "len", numv)
		d.field(&l, base, 6, 2, "checksum", numv)
		sumAt = 6
	default:
		l = Layer{Kind: "icmp"}
		if proto == 58 {
			l.Kind = "icmpv6"
		}
		d.field(&l, base, 0, 1, "type", numv)
		d.field(&l, base, 1, 1, "code", numv)
		d.field(&l, base, 4, 2, "id", numv)
		d.field(&l, base, 6, 2, "seq", numv)
		if proto == 58 {
			d.field(&l, base, 4, 4, "mtu", numv)
		} else {
			d.field(&l, base, 6, 2, "mtu", numv)
		}
		d.field(&l, base, 4, 4, "rest", numv)
		d.field(&l, base, 2, 2, "checksum", numv)
		sumAt = 2
		markMinor(&l)
	}
	if l.Truncated || hl < 8 || hl > d.left() {
		l.Truncated = true
		d.push(l)
		d.off = len(d.b)
		return
	}
	seg := d.b[base:]
	if l.Kind == "udp" && binary.BigEndian.Uint16(seg[sumAt:]) == 0 && ipLayer != nil && ipLayer.Kind == "ipv4" {
		setCheck(&l, true) // no checksum, which IPv4 allows
	} else if l.Kind == "icmp" {
		setCheck(&l, checksum(seg, 0) == 0)
	} else if ipLayer != nil {
		setCheck(&l, checksum(seg, pseudoHeader(ipLayer, uint8(proto), len(seg))) == 0)
	}
	d.push(l)
	d.off += hl
	if quotesPacket(l) {
		d.ip()
		return
	}
	d.payload()
}

// lastIP is the IP header the transport header being read is under.
func (d *dissector) lastIP() *Layer {
	for i := len(d.layers) - 1; i >= 0; i-- {
		if isIP(d.layers[i].Kind) {
			return &d.layers[i]
		}
	}
	return nil
}

// quotesPacket tells the ICMP errors, which carry the start of the packet
// they are about.
func quotesPacket(l Layer) bool {
	t := l.num("type", 0)
	if l.Kind == "icmp" {
		return t == 3 || t == 4 || t == 5 || t == 11 || t == 12
	}
	return l.Kind == "icmpv6" && t >= 1 && t <= 4
}

// markMinor hides the readings of an ICMP message's last 4 bytes that its
// type does not use: an echo has an id and a sequence, "too big" an MTU.
func markMinor(l *Layer) {
	t, code := l.num("type", 0), l.num("code", 0)
	echo := l.Kind == "icmp" && (t == 0 || t == 8) || l.Kind == "icmpv6" && (t == 128 || t == 129)
	mtu := l.Kind == "icmp" && t == 3 && code == 4 || l.Kind == "icmpv6" && t == 2
	for i := range l.Fields {
		f := &l.Fields[i]
		switch f.Name {
		case "id", "seq":
			f.minor = !echo
		case "mtu":
			f.minor = !mtu
		case "rest":
			f.minor = echo || mtu || f.Value.Num == 0
		}
	}
}
