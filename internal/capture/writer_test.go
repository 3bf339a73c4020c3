package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/capture/filter"
	pt "github.com/dsrlab/dsrlab/internal/capture/packettest"
)

// The readers below parse what the writers produce independently of them,
// field by field as the formats define them, so that a writer bug does not
// hide behind a matching reader bug.

type readPacket struct {
	iface  int
	ts     time.Time
	data   []byte
	length int
	flags  uint32 // pcapng epb_flags; 0 if absent
}

type readFile struct {
	ifaces  []Interface
	packets []readPacket
}

func readPcap(t *testing.T, b []byte) readFile {
	t.Helper()
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
		t.Fatalf("not a little-endian microsecond pcap file: % x", b[:min(len(b), 24)])
	}
	if v := binary.LittleEndian.Uint16(b[4:]); v != 2 || binary.LittleEndian.Uint32(b[16:]) != filter.Snaplen {
		t.Fatalf("pcap version %d snaplen %d", v, binary.LittleEndian.Uint32(b[16:]))
	}
	f := readFile{ifaces: []Interface{{LinkType: filter.LinkType(binary.LittleEndian.Uint32(b[20:]))}}}
	for b = b[24:]; len(b) > 0; {
		if len(b) < 16 {
			t.Fatalf("%d bytes left: a cut record header", len(b))
		}
		incl := int(binary.LittleEndian.Uint32(b[8:]))
		p := readPacket{
			ts:     time.Unix(int64(binary.LittleEndian.Uint32(b)), int64(binary.LittleEndian.Uint32(b[4:]))*1000),
			length: int(binary.LittleEndian.Uint32(b[12:])),
			data:   b[16 : 16+incl],
		}
		f.packets = append(f.packets, p)
		b = b[16+incl:]
	}
	return f
}

func readPcapng(t *testing.T, b []byte) readFile {
	t.Helper()
	var f readFile
	le := binary.LittleEndian
	for first := true; len(b) > 0; first = false {
		if len(b) < 12 {
			t.Fatalf("%d bytes left: a cut block", len(b))
		}
		typ, total := le.Uint32(b), int(le.Uint32(b[4:]))
		if total%4 != 0 || total > len(b) || le.Uint32(b[total-4:]) != uint32(total) {
			t.Fatalf("block %#x: bad total length %d", typ, total)
		}
		body := b[8 : total-4]
		b = b[total:]
		if first != (typ == 0x0a0d0d0a) {
			t.Fatalf("block %#x where the section header should be (first=%v)", typ, first)
		}
		switch typ {
		case 0x0a0d0d0a:
			if le.Uint32(body) != 0x1a2b3c4d || le.Uint16(body[4:]) != 1 {
				t.Fatalf("section header: % x", body[:8])
			}
		case 1:
			ifc := Interface{LinkType: filter.LinkType(le.Uint16(body))}
			for code, val := range options(t, body[8:]) {
				switch code {
				case 2:
					ifc.Name = string(val)
				case 9:
					if !bytes.Equal(val, []byte{9}) {
						t.Fatalf("if_tsresol %v, want nanoseconds", val)
					}
				}
			}
			f.ifaces = append(f.ifaces, ifc)
		case 6:
			caplen := int(le.Uint32(body[12:]))
			p := readPacket{
				iface:  int(le.Uint32(body)),
				ts:     time.Unix(0, int64(uint64(le.Uint32(body[4:]))<<32|uint64(le.Uint32(body[8:])))),
				length: int(le.Uint32(body[16:])),
				data:   body[20 : 20+caplen],
			}
			if p.iface >= len(f.ifaces) {
				t.Fatalf("packet on interface %d before its description", p.iface)
			}
			for code, val := range options(t, body[20+(caplen+3)/4*4:]) {
				if code == 2 {
					p.flags = le.Uint32(val)
				}
			}
			f.packets = append(f.packets, p)
		default:
			t.Fatalf("unexpected block type %#x", typ)
		}
	}
	return f
}

func options(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	opts := map[uint16][]byte{}
	for len(b) >= 4 {
		code, n := binary.LittleEndian.Uint16(b), int(binary.LittleEndian.Uint16(b[2:]))
		if code == 0 {
			return opts
		}
		if 4+n > len(b) {
			t.Fatalf("option %d of %d bytes overruns its block", code, n)
		}
		opts[code] = b[4 : 4+n]
		b = b[4+(n+3)/4*4:]
	}
	if len(b) != 0 {
		t.Fatalf("%d stray bytes after the options", len(b))
	}
	return opts
}

// packets of odd sizes, so that padding is exercised.
func samplePackets() []Packet {
	t0 := time.Date(2025, 3, 4, 5, 6, 7, 890123456, time.UTC)
	var ps []Packet
	for i, dir := range []Direction{Out, In, In, DirUnknown} {
		data := pt.Ethernet(pt.IPv4Header{Src: pt.Addr("10.0.0.1"), Dst: pt.Addr("10.0.0.2"), Proto: pt.UDP}.
			Marshal(pt.UDPHeader{SrcPort: 1, DstPort: 2}.Marshal(bytes.Repeat([]byte{byte(i)}, i))))
		p := Packet{Time: t0.Add(time.Duration(i) * time.Microsecond), Iface: i % 2, Dir: dir, Data: data, Length: len(data) + i}
		if i == 2 {
			p.Type = 1 // PACKET_BROADCAST
		}
		ps = append(ps, p)
	}
	return ps
}

func TestPcapngRoundTrip(t *testing.T) {
	ifaces := []Interface{{"router:eth1", filter.Ethernet}, {"real1:tunl0", filter.RawIP}}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, ifaces)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := w.(*PcapngWriter); !ok {
		t.Fatalf("two interfaces got a %T, want pcapng", w)
	}
	in := samplePackets()
	for _, p := range in {
		if err := w.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	f := readPcapng(t, buf.Bytes())
	if fmt.Sprint(f.ifaces) != fmt.Sprint(ifaces) {
		t.Errorf("interfaces %v, want %v", f.ifaces, ifaces)
	}
	// in: inbound + unicast; out: outbound; broadcast: inbound + 3<<2.
	wantFlags := []uint32{2, 1 | 1<<2, 1 | 3<<2, 0}
	if len(f.packets) != len(in) {
		t.Fatalf("%d packets, want %d", len(f.packets), len(in))
	}
	for i, p := range f.packets {
		if p.iface != in[i].Iface || !p.ts.Equal(in[i].Time) || !bytes.Equal(p.data, in[i].Data) || p.length != in[i].Length || p.flags != wantFlags[i] {
			t.Errorf("packet %d: iface %d ts %v len %d/%d flags %d, want %d %v %d/%d %d",
				i, p.iface, p.ts, len(p.data), p.length, p.flags, in[i].Iface, in[i].Time, len(in[i].Data), in[i].Length, wantFlags[i])
		}
	}
	if err := w.WritePacket(Packet{Iface: 2}); err == nil {
		t.Error("a packet of an undeclared interface was written")
	}
}

func TestPcapRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, []Interface{{"real1:tunl0", filter.RawIP}})
	if err != nil {
		t.Fatal(err)
	}
	in := samplePackets()
	for _, p := range in {
		if err := w.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	f := readPcap(t, buf.Bytes())
	if len(f.packets) != len(in) {
		t.Fatalf("%d packets, want %d", len(f.packets), len(in))
	}
	if f.ifaces[0].LinkType != filter.RawIP {
		t.Errorf("link type %d, want raw IP (101)", f.ifaces[0].LinkType)
	}
	for i, p := range f.packets {
		if !p.ts.Equal(in[i].Time.Truncate(time.Microsecond)) || !bytes.Equal(p.data, in[i].Data) || p.length != in[i].Length {
			t.Errorf("packet %d: ts %v len %d/%d, want %v %d/%d", i, p.ts, len(p.data), p.length, in[i].Time, len(in[i].Data), in[i].Length)
		}
	}
}
