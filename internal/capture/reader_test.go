package capture

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/capture/filter"
)

// TestReadWhatWeWrite reads back both formats the writers produce.
func TestReadWhatWeWrite(t *testing.T) {
	for _, ifaces := range [][]Interface{
		{{"real1:tunl0", filter.RawIP}},
		{{"router:eth1", filter.Ethernet}, {"real1:tunl0", filter.RawIP}},
	} {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, ifaces)
		if err != nil {
			t.Fatal(err)
		}
		in := samplePackets()
		for i := range in {
			if len(ifaces) == 1 {
				in[i].Iface, in[i].Dir, in[i].Time = 0, DirUnknown, in[i].Time.Truncate(time.Microsecond)
			}
			if err := w.WritePacket(in[i]); err != nil {
				t.Fatal(err)
			}
		}
		f, err := ReadFile(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Interfaces) != len(ifaces) || f.Interfaces[0].LinkType != ifaces[0].LinkType ||
			len(ifaces) > 1 && f.Interfaces[1] != ifaces[1] {
			t.Errorf("interfaces %v, want %v", f.Interfaces, ifaces)
		}
		if len(f.Packets) != len(in) {
			t.Fatalf("%d packets, want %d", len(f.Packets), len(in))
		}
		for i, p := range f.Packets {
			want := in[i]
			if p.Iface != want.Iface || p.Dir != want.Dir || !p.Time.Equal(want.Time) || !bytes.Equal(p.Data, want.Data) || p.Length != want.Length {
				t.Errorf("%d interfaces, packet %d: %+v, want %+v", len(ifaces), i, p, want)
			}
		}
	}
}

// TestReadBigEndianNanosecondPcap reads a file as another machine's tool
// writes it: big-endian, nanosecond magic.
func TestReadBigEndianNanosecondPcap(t *testing.T) {
	be := binary.BigEndian
	b := be.AppendUint32(nil, 0xa1b23c4d)
	b = be.AppendUint16(b, 2)
	b = be.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = be.AppendUint32(b, 65535)
	b = be.AppendUint32(b, 1)
	b = be.AppendUint32(b, 10)  // seconds
	b = be.AppendUint32(b, 500) // nanoseconds
	b = be.AppendUint32(b, 3)
	b = be.AppendUint32(b, 60)
	b = append(b, 1, 2, 3)
	f, err := ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Interfaces[0].LinkType != filter.Ethernet || len(f.Packets) != 1 ||
		!f.Packets[0].Time.Equal(time.Unix(10, 500)) || !bytes.Equal(f.Packets[0].Data, []byte{1, 2, 3}) || f.Packets[0].Length != 60 {
		t.Errorf("got %+v %+v", f.Interfaces, f.Packets)
	}
	if _, err := ReadFile(b[:len(b)-1]); err == nil {
		t.Error("a cut record was read")
	}
	if _, err := ReadFile([]byte("hello world")); err == nil {
		t.Error("text was read as a capture")
	}
}
