package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dsrlab/dsrlab/internal/capture/filter"
)

// File is a capture file read back: its interfaces (one, unnamed, for
// pcap) and its packets, in file order.
type File struct {
	Interfaces []Interface
	Packets    []Packet
}

// pcap's magic numbers, as read little-endian: microsecond and nanosecond
// timestamps, either byte order.
const (
	pcapMagicNanoseconds = 0xa1b23c4d
	pcapngBlockSPB       = 0x00000003
)

// ReadFile reads a pcap or a pcapng file, whichever byte order wrote it:
// what `dsrlab capture -w` writes, and what tcpdump and Wireshark do.
func ReadFile(b []byte) (*File, error) {
	if len(b) < 4 {
		return nil, errors.New("not a capture file: too short")
	}
	switch m := le.Uint32(b); {
	case m == blockSHB:
		return decodePcapng(b)
	case m == pcapMagicMicroseconds, m == pcapMagicNanoseconds:
		return decodePcap(b, binary.LittleEndian)
	case binary.BigEndian.Uint32(b) == pcapMagicMicroseconds, binary.BigEndian.Uint32(b) == pcapMagicNanoseconds:
		return decodePcap(b, binary.BigEndian)
	}
	return nil, fmt.Errorf("not a pcap or pcapng file (magic % x)", b[:4])
}

func decodePcap(b []byte, bo binary.ByteOrder) (*File, error) {
	if len(b) < 24 {
		return nil, errors.New("pcap: file header cut short")
	}
	unit := time.Microsecond
	if bo.Uint32(b) == pcapMagicNanoseconds {
		unit = time.Nanosecond
	}
	// The link type's low 16 bits; the upper ones carry FCS information.
	f := &File{Interfaces: []Interface{{LinkType: filter.LinkType(bo.Uint32(b[20:]) & 0xffff)}}}
	for off := 24; off < len(b); {
		if len(b)-off < 16 {
			return nil, fmt.Errorf("pcap: record %d: header cut short", len(f.Packets)+1)
		}
		h := b[off : off+16]
		incl := int(bo.Uint32(h[8:]))
		if incl > len(b)-off-16 {
			return nil, fmt.Errorf("pcap: record %d: %d bytes announced, %d left", len(f.Packets)+1, incl, len(b)-off-16)
		}
		f.Packets = append(f.Packets, Packet{
			Time:   time.Unix(int64(bo.Uint32(h)), int64(bo.Uint32(h[4:]))*int64(unit)),
			Data:   b[off+16 : off+16+incl],
			Length: int(bo.Uint32(h[12:])),
		})
		off += 16 + incl
	}
	return f, nil
}

// decodePcapng reads the blocks packets are in (SHB, IDB, EPB, SPB) and
// skips the others, as the format asks readers to. Each section has its
// own byte order and interfaces; packets keep their index into
// File.Interfaces, which holds every section's.
func decodePcapng(b []byte) (*File, error) {
	f := &File{}
	var bo binary.ByteOrder = binary.LittleEndian
	base := 0               // index in f.Interfaces of the section's first interface
	var res []time.Duration // each interface's timestamp unit
	for off := 0; off < len(b); {
		if len(b)-off < 12 {
			return nil, fmt.Errorf("pcapng: block at byte %d cut short", off)
		}
		if le.Uint32(b[off:]) == blockSHB {
			switch magic := b[off+8 : off+12]; {
			case le.Uint32(magic) == byteOrderMagic:
				bo = binary.LittleEndian
			case binary.BigEndian.Uint32(magic) == byteOrderMagic:
				bo = binary.BigEndian
			default:
				return nil, fmt.Errorf("pcapng: section at byte %d: bad byte-order magic", off)
			}
			base = len(f.Interfaces)
		}
		typ, total := bo.Uint32(b[off:]), int(bo.Uint32(b[off+4:]))
		if total < 12 || total%4 != 0 || total > len(b)-off {
			return nil, fmt.Errorf("pcapng: block at byte %d: bad length %d", off, total)
		}
		body := b[off+8 : off+total-4]
		switch typ {
		case blockIDB:
			if len(body) < 8 {
				return nil, fmt.Errorf("pcapng: interface block at byte %d cut short", off)
			}
			ifc := Interface{LinkType: filter.LinkType(bo.Uint16(body))}
			unit := time.Microsecond
			for code, val := range pcapngOptions(body[8:], bo) {
				switch {
				case code == optIfName:
					ifc.Name = string(val)
				case code == optIfTsresol && len(val) == 1:
					unit = tsresol(val[0])
				}
			}
			f.Interfaces = append(f.Interfaces, ifc)
			res = append(res, unit)
		case blockEPB:
			if len(body) < 20 {
				return nil, fmt.Errorf("pcapng: packet block at byte %d cut short", off)
			}
			iface := base + int(bo.Uint32(body))
			caplen := int(bo.Uint32(body[12:]))
			if iface >= len(f.Interfaces) || caplen > len(body)-20 {
				return nil, fmt.Errorf("pcapng: packet block at byte %d: interface %d or length %d out of range", off, iface, caplen)
			}
			ts := uint64(bo.Uint32(body[4:]))<<32 | uint64(bo.Uint32(body[8:]))
			p := Packet{Iface: iface, Time: time.Unix(0, 0).Add(time.Duration(ts) * res[iface]),
				Data: body[20 : 20+caplen], Length: int(bo.Uint32(body[16:]))}
			for code, val := range pcapngOptions(body[20+(caplen+3)/4*4:], bo) {
				if code == optEpbFlags && len(val) == 4 {
					switch bo.Uint32(val) & 3 {
					case epbInbound:
						p.Dir = In
					case epbOutbound:
						p.Dir = Out
					}
				}
			}
			f.Packets = append(f.Packets, p)
		case pcapngBlockSPB:
			if len(body) < 4 || base >= len(f.Interfaces) {
				return nil, fmt.Errorf("pcapng: simple packet block at byte %d without an interface", off)
			}
			n := min(int(bo.Uint32(body)), len(body)-4)
			f.Packets = append(f.Packets, Packet{Iface: base, Data: body[4 : 4+n], Length: int(bo.Uint32(body))})
		}
		off += total
	}
	return f, nil
}

// tsresol is an if_tsresol option's unit: 10^-n seconds, or 2^-n with the
// high bit set.
func tsresol(v byte) time.Duration {
	if v&0x80 != 0 {
		return time.Second >> (v & 0x7f)
	}
	d := time.Second
	for range v {
		d /= 10
	}
	return max(d, 1)
}

func pcapngOptions(b []byte, bo binary.ByteOrder) map[uint16][]byte {
	opts := map[uint16][]byte{}
	for len(b) >= 4 {
		code, n := bo.Uint16(b), int(bo.Uint16(b[2:]))
		if code == optEnd || 4+n > len(b) {
			break
		}
		opts[code] = b[4 : 4+n]
		b = b[4+(n+3)/4*4:]
	}
	return opts
}
