package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"

	"github.com/dsrlab/dsrlab/internal/capture/filter"
)

// PacketWriter writes packets to a capture file.
type PacketWriter interface {
	WritePacket(Packet) error
}

// NewWriter writes pcap when there is one interface, which every tool
// reads, and pcapng, which names each packet's interface, when there are
// several.
func NewWriter(w io.Writer, ifaces []Interface) (PacketWriter, error) {
	if len(ifaces) == 1 {
		return NewPcapWriter(w, ifaces[0].LinkType)
	}
	return NewPcapngWriter(w, ifaces)
}

// All capture files are written little-endian; readers learn the byte
// order from the magic numbers.
var le = binary.LittleEndian

// PcapWriter writes the classic pcap format (microsecond timestamps).
type PcapWriter struct {
	w io.Writer
}

const pcapMagicMicroseconds = 0xa1b2c3d4

// NewPcapWriter writes the file header.
func NewPcapWriter(w io.Writer, link filter.LinkType) (*PcapWriter, error) {
	h := make([]byte, 24)
	le.PutUint32(h[0:], pcapMagicMicroseconds)
	le.PutUint16(h[4:], 2) // version 2.4
	le.PutUint16(h[6:], 4)
	le.PutUint32(h[16:], filter.Snaplen)
	le.PutUint32(h[20:], uint32(link))
	if _, err := w.Write(h); err != nil {
		return nil, err
	}
	return &PcapWriter{w: w}, nil
}

// WritePacket writes one record; a pcap file has no room for the
// interface or the direction.
func (p *PcapWriter) WritePacket(pkt Packet) error {
	h := make([]byte, 16, 16+len(pkt.Data))
	le.PutUint32(h[0:], uint32(pkt.Time.Unix()))
	le.PutUint32(h[4:], uint32(pkt.Time.Nanosecond()/1000))
	le.PutUint32(h[8:], uint32(len(pkt.Data)))
	le.PutUint32(h[12:], uint32(pkt.Length))
	_, err := p.w.Write(append(h, pkt.Data...))
	return err
}

// PcapngWriter writes pcapng: one section, one Interface Description
// Block per interface (named "node:iface", nanosecond timestamps), one
// Enhanced Packet Block per packet with its direction.
type PcapngWriter struct {
	w      io.Writer
	ifaces int
}

// pcapng block types and option codes (draft-ietf-opsawg-pcapng).
const (
	blockSHB = 0x0a0d0d0a
	blockIDB = 0x00000001
	blockEPB = 0x00000006

	byteOrderMagic = 0x1a2b3c4d

	optEnd        = 0
	optShbUserApp = 4
	optIfName     = 2
	optIfTsresol  = 9
	optEpbFlags   = 2

	epbInbound  = 1
	epbOutbound = 2
)

// NewPcapngWriter writes the section header and the interfaces.
func NewPcapngWriter(w io.Writer, ifaces []Interface) (*PcapngWriter, error) {
	if len(ifaces) == 0 {
		return nil, errors.New("pcapng: no interface")
	}
	shb := make([]byte, 16)
	le.PutUint32(shb[0:], byteOrderMagic)
	le.PutUint16(shb[4:], 1) // version 1.0
	le.PutUint64(shb[8:], ^uint64(0))
	shb = appendOption(shb, optShbUserApp, []byte("dsrlab"))
	if err := writeBlock(w, blockSHB, appendOption(shb, optEnd, nil)); err != nil {
		return nil, err
	}
	for _, ifc := range ifaces {
		idb := make([]byte, 8)
		le.PutUint16(idb[0:], uint16(ifc.LinkType))
		le.PutUint32(idb[4:], filter.Snaplen)
		idb = appendOption(idb, optIfName, []byte(ifc.Name))
		idb = appendOption(idb, optIfTsresol, []byte{9}) // 10^-9 s
		if err := writeBlock(w, blockIDB, appendOption(idb, optEnd, nil)); err != nil {
			return nil, err
		}
	}
	return &PcapngWriter{w: w, ifaces: len(ifaces)}, nil
}

// WritePacket writes one Enhanced Packet Block.
func (p *PcapngWriter) WritePacket(pkt Packet) error {
	if pkt.Iface < 0 || pkt.Iface >= p.ifaces {
		return fmt.Errorf("pcapng: packet of interface %d, but the file has %d", pkt.Iface, p.ifaces)
	}
	ts := uint64(pkt.Time.UnixNano())
	b := make([]byte, 20, 20+len(pkt.Data)+16)
	le.PutUint32(b[0:], uint32(pkt.Iface))
	le.PutUint32(b[4:], uint32(ts>>32))
	le.PutUint32(b[8:], uint32(ts))
	le.PutUint32(b[12:], uint32(len(pkt.Data)))
	le.PutUint32(b[16:], uint32(pkt.Length))
	b = append(b, pkt.Data...)
	b = pad4(b)
	if flags := epbFlags(pkt); flags != 0 {
		b = appendOption(b, optEpbFlags, le.AppendUint32(nil, flags))
		b = appendOption(b, optEnd, nil)
	}
	return writeBlock(p.w, blockEPB, b)
}

// epbFlags holds the direction (bits 0-1) and the reception type (bits
// 2-4: unicast, multicast, broadcast, promiscuous) of a packet.
func epbFlags(pkt Packet) uint32 {
	var f uint32
	switch pkt.Dir {
	case In:
		f = epbInbound
	case Out:
		return epbOutbound
	default:
		return 0
	}
	switch pkt.Type {
	case unix.PACKET_HOST:
		f |= 1 << 2
	case unix.PACKET_MULTICAST:
		f |= 2 << 2
	case unix.PACKET_BROADCAST:
		f |= 3 << 2
	case unix.PACKET_OTHERHOST:
		f |= 4 << 2
	}
	return f
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func appendOption(b []byte, code uint16, value []byte) []byte {
	b = le.AppendUint16(b, code)
	b = le.AppendUint16(b, uint16(len(value)))
	return pad4(append(b, value...))
}

// writeBlock frames a block body with its type and total length, which
// pcapng repeats at the end so that files can be read backwards.
func writeBlock(w io.Writer, typ uint32, body []byte) error {
	total := uint32(12 + len(body))
	b := make([]byte, 0, total)
	b = le.AppendUint32(b, typ)
	b = le.AppendUint32(b, total)
	b = append(b, body...)
	b = le.AppendUint32(b, total)
	_, err := w.Write(b)
	return err
}
