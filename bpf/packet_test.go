//go:build linux

package bpf

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Helpers shared by the packet tests: a skip rule for unprivileged or
// BPF-less hosts, a BPF_PROG_TEST_RUN wrapper, and frame builders that know
// nothing of the C code, so expected outputs are computed independently.

// XDP verdicts (enum xdp_action).
type xdpAction uint32

const (
	xdpAborted xdpAction = iota
	xdpDrop
	xdpPass
	xdpTX
)

func (a xdpAction) String() string {
	return [...]string{"XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX"}[a]
}

const (
	ethHeaderLen  = 14
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	tcpHeaderLen  = 20
	udpHeaderLen  = 8
	minFrameLen   = 60 // Ethernet minimum without FCS; shorter frames are padded

	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd

	protoICMP = 1
	protoIPIP = 4

	tcpFlagsOffset = 13
	tcpFlagSYN     = 0x02
	tcpFlagsPSHACK = 0x18

	ipFlagDF = 0x4000
	ipFlagMF = 0x2000

	clientTTL = 63 // after one router hop
	originTTL = 64 // of packets the balancer makes
)

// The reference lab's addresses (DESIGN.md).
var (
	clientAddr  = netip.MustParseAddr("10.111.220.11")
	vipAddr     = netip.MustParseAddr("192.168.10.1")
	katranAddr  = netip.MustParseAddr("10.111.221.11")
	realAddr    = netip.MustParseAddr("10.111.222.11")
	otherReal   = netip.MustParseAddr("10.111.222.21")
	routerMAC   = net.HardwareAddr{0x02, 0xd5, 0x00, 0x00, 0x00, 0x12}
	katranMAC   = net.HardwareAddr{0x02, 0xd5, 0x00, 0x00, 0x00, 0x11}
	realSideMAC = net.HardwareAddr{0x02, 0xd5, 0x00, 0x00, 0x02, 0x11}
)

// requireBPF skips tb unless the process may load BPF programs.
func requireBPF(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to load XDP programs and run BPF_PROG_TEST_RUN")
	}
}

// skipIfUnsupported skips tb when err says the kernel lacks a BPF feature
// rather than that the code is wrong.
func skipIfUnsupported(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EPERM) {
		tb.Skipf("BPF not usable here: %v", err)
	}
}

// runXDP runs prog once on in, on testCPU, and returns the verdict and the
// frame as the program left it. Repeat is 1 on purpose: with more, the
// kernel does not reset the packet between runs (DESIGN.md pitfall 7).
func runXDP(tb testing.TB, prog *ebpf.Program, in []byte) (xdpAction, []byte) {
	tb.Helper()
	return runXDPOn(tb, testCPU, prog, in)
}

// runXDPOn is runXDP on the given CPU.
func runXDPOn(tb testing.TB, cpu int, prog *ebpf.Program, in []byte) (xdpAction, []byte) {
	tb.Helper()
	opts := ebpf.RunOptions{
		Data:    in,
		DataOut: make([]byte, len(in)+ipv6HeaderLen),
		Repeat:  1,
	}
	var ret uint32
	var err error
	func() {
		defer pinToCPU(tb, cpu)()
		ret, err = prog.Run(&opts)
	}()
	if err != nil {
		skipIfUnsupported(tb, err)
		tb.Fatalf("run %s: %v", prog, err)
	}
	return xdpAction(ret), opts.DataOut
}

// testCPU is where every test run happens. A test run executes on the
// calling thread's CPU, and the connection table is per CPU: a flow whose
// packets ran on different CPUs would look new on each, as if the NIC's
// RSS had moved it. Pinning makes the tests see one table; the tests of a
// flow that moves CPU run on otherCPU too (runXDPOn).
const (
	testCPU  = 0
	otherCPU = 1
)

// pinToTestCPU locks the goroutine to its thread and the thread to
// testCPU, until the returned function restores both.
func pinToTestCPU(tb testing.TB) (restore func()) {
	tb.Helper()
	return pinToCPU(tb, testCPU)
}

// pinToCPU is pinToTestCPU for any CPU.
func pinToCPU(tb testing.TB, cpu int) (restore func()) {
	tb.Helper()
	runtime.LockOSThread()
	var orig, pinned unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		runtime.UnlockOSThread()
		tb.Fatalf("get CPU affinity: %v", err)
	}
	pinned.Set(cpu)
	if err := unix.SchedSetaffinity(0, &pinned); err != nil {
		runtime.UnlockOSThread()
		tb.Fatalf("pin to CPU %d: %v", cpu, err)
	}
	return func() {
		unix.SchedSetaffinity(0, &orig)
		runtime.UnlockOSThread()
	}
}

// ipChecksum is the RFC 1071 checksum; over a header that includes a
// correct checksum field it is zero.
func ipChecksum(hdr []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(hdr); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(hdr[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// hexFrame is a frame written out byte by byte, in hex with spaces
// between fields where they help the reader.
func hexFrame(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

func ethFrame(dst, src net.HardwareAddr, etherType uint16, payload []byte) []byte {
	b := make([]byte, 0, ethHeaderLen+len(payload))
	b = append(b, dst...)
	b = append(b, src...)
	b = binary.BigEndian.AppendUint16(b, etherType)
	return append(b, payload...)
}

// ipv4Packet is an IPv4 packet before marshalling; fixtures tweak its
// fields to build malformed or unusual packets.
type ipv4Packet struct {
	src, dst netip.Addr
	proto    uint8
	tos      uint8
	fragOff  uint16
	options  []byte
	payload  []byte
}

func (p ipv4Packet) marshal() []byte {
	hl := ipv4HeaderLen + len(p.options)
	b := make([]byte, hl, hl+len(p.payload))
	b[0] = 4<<4 | byte(hl/4)
	b[1] = p.tos
	binary.BigEndian.PutUint16(b[2:], uint16(hl+len(p.payload)))
	binary.BigEndian.PutUint16(b[4:], 0x1234)
	binary.BigEndian.PutUint16(b[6:], p.fragOff)
	b[8] = clientTTL
	b[9] = p.proto
	src, dst := p.src.As4(), p.dst.As4()
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	copy(b[ipv4HeaderLen:], p.options)
	binary.BigEndian.PutUint16(b[10:], ipChecksum(b))
	return append(b, p.payload...)
}

func tcpSegment(sport, dport uint16, data []byte) []byte {
	b := make([]byte, tcpHeaderLen, tcpHeaderLen+len(data))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], 1000)
	binary.BigEndian.PutUint32(b[8:], 2000)
	b[12] = tcpHeaderLen / 4 << 4
	b[tcpFlagsOffset] = tcpFlagsPSHACK
	binary.BigEndian.PutUint16(b[14:], 502)
	return append(b, data...)
}

func udpDatagram(sport, dport uint16, data []byte) []byte {
	b := make([]byte, udpHeaderLen, udpHeaderLen+len(data))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(udpHeaderLen+len(data)))
	return append(b, data...)
}

// flow is a 5-tuple; frame builds one packet of it as the router sends it
// to the balancer.
type flow struct {
	src, dst     netip.Addr
	sport, dport uint16
	proto        uint8
}

var helloPayload = []byte("hello\n")

// l4 is the flow's transport segment carrying helloPayload, the same in
// either IP version.
func (f flow) l4() []byte {
	switch Proto(f.proto) {
	case ProtoTCP:
		return tcpSegment(f.sport, f.dport, helloPayload)
	case ProtoUDP:
		return udpDatagram(f.sport, f.dport, helloPayload)
	}
	return helloPayload
}

func (f flow) frame(tweaks ...func(*ipv4Packet)) []byte {
	p := ipv4Packet{src: f.src, dst: f.dst, proto: f.proto, payload: f.l4()}
	for _, tweak := range tweaks {
		tweak(&p)
	}
	return ethFrame(katranMAC, routerMAC, etherTypeIPv4, p.marshal())
}

func withDF(p *ipv4Packet) { p.fragOff = ipFlagDF }

// sized pads a TCP or UDP packet's payload to make it totLen bytes of IP.
func sized(totLen int) func(*ipv4Packet) {
	return func(p *ipv4Packet) {
		sport, dport := binary.BigEndian.Uint16(p.payload[0:]), binary.BigEndian.Uint16(p.payload[2:])
		switch Proto(p.proto) {
		case ProtoTCP:
			p.payload = tcpSegment(sport, dport, make([]byte, totLen-ipv4HeaderLen-tcpHeaderLen))
		case ProtoUDP:
			p.payload = udpDatagram(sport, dport, make([]byte, totLen-ipv4HeaderLen-udpHeaderLen))
		}
	}
}

func arpRequest() []byte {
	arp := []byte{
		0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // Ethernet/IPv4, who-has
		0x02, 0xd5, 0x00, 0x00, 0x00, 0x12, 10, 111, 221, 12, // sender
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 111, 221, 11, // target
	}
	return ethFrame(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, routerMAC, etherTypeARP, arp)
}

// ipipEncap is what the balancer must send for frame in: the frame to
// nextHop from in's destination MAC, an outer header src->real, and in's IP
// packet (with any Ethernet padding) unchanged.
func ipipEncap(in []byte, src, real netip.Addr, nextHop net.HardwareAddr) []byte {
	inner := in[ethHeaderLen:]
	outer := make([]byte, ipv4HeaderLen)
	outer[0] = 4<<4 | ipv4HeaderLen/4
	outer[1] = inner[1]
	binary.BigEndian.PutUint16(outer[2:], binary.BigEndian.Uint16(inner[2:])+ipv4HeaderLen)
	binary.BigEndian.PutUint16(outer[6:], ipFlagDF)
	outer[8] = originTTL
	outer[9] = protoIPIP
	s, d := src.As4(), real.As4()
	copy(outer[12:], s[:])
	copy(outer[16:], d[:])
	binary.BigEndian.PutUint16(outer[10:], ipChecksum(outer))
	return ethFrame(nextHop, in[:6], etherTypeIPv4, append(outer, inner...))
}

// checkIPIP checks the outer headers of an encapsulated frame field by
// field, so a failure says which one is wrong.
func checkIPIP(tb testing.TB, out, in []byte, src, real netip.Addr) {
	tb.Helper()
	if len(out) != len(in)+ipv4HeaderLen {
		tb.Fatalf("frame length %d, want %d", len(out), len(in)+ipv4HeaderLen)
	}
	if got := net.HardwareAddr(out[0:6]); !bytes.Equal(got, routerMAC) {
		tb.Errorf("eth dst %s, want next hop %s", got, routerMAC)
	}
	if got := net.HardwareAddr(out[6:12]); !bytes.Equal(got, in[0:6]) {
		tb.Errorf("eth src %s, want the frame's original dst %s", got, net.HardwareAddr(in[0:6]))
	}
	if et := binary.BigEndian.Uint16(out[12:]); et != etherTypeIPv4 {
		tb.Errorf("ethertype %#04x, want IPv4", et)
	}
	outer := out[ethHeaderLen : ethHeaderLen+ipv4HeaderLen]
	if outer[0] != 4<<4|ipv4HeaderLen/4 {
		tb.Errorf("version/ihl %#02x, want 0x45", outer[0])
	}
	if outer[1] != in[ethHeaderLen+1] {
		tb.Errorf("tos %#02x, want the inner %#02x", outer[1], in[ethHeaderLen+1])
	}
	innerLen := binary.BigEndian.Uint16(in[ethHeaderLen+2:])
	if got := binary.BigEndian.Uint16(outer[2:]); got != innerLen+ipv4HeaderLen {
		tb.Errorf("tot_len %d, want %d", got, innerLen+ipv4HeaderLen)
	}
	if got := binary.BigEndian.Uint16(outer[6:]); got != ipFlagDF {
		tb.Errorf("frag_off %#04x, want DF only", got)
	}
	if outer[8] != originTTL {
		tb.Errorf("ttl %d, want %d", outer[8], originTTL)
	}
	if outer[9] != protoIPIP {
		tb.Errorf("protocol %d, want IPIP", outer[9])
	}
	if ipChecksum(outer) != 0 {
		tb.Errorf("header checksum %#04x is wrong", binary.BigEndian.Uint16(outer[10:]))
	}
	if got := netip.AddrFrom4([4]byte(outer[12:16])); got != src {
		tb.Errorf("outer src %s, want %s", got, src)
	}
	if got := netip.AddrFrom4([4]byte(outer[16:20])); got != real {
		tb.Errorf("outer dst %s, want %s", got, real)
	}
	if !bytes.Equal(out[ethHeaderLen+ipv4HeaderLen:], in[ethHeaderLen:]) {
		tb.Errorf("inner packet changed\n got %x\nwant %x", out[ethHeaderLen+ipv4HeaderLen:], in[ethHeaderLen:])
	}
}

// fixture is one packet test, as Katran writes them: a frame in, the
// verdict, and the frame that must come out.
type fixture struct {
	name string
	in   []byte
	want xdpAction
	out  []byte // nil: the frame must come out unchanged
}

// runFixtures runs each fixture through prog as a subtest. check, if not
// nil, adds what a fixture's bytes cannot say (a field-by-field diagnosis,
// checksums) and runs before the byte comparison.
func runFixtures(t *testing.T, prog *ebpf.Program, fixtures []fixture, check func(*testing.T, fixture, []byte)) {
	t.Helper()
	for _, tt := range fixtures {
		t.Run(tt.name, func(t *testing.T) {
			got, out := runXDP(t, prog, tt.in)
			if got != tt.want {
				t.Fatalf("verdict %s, want %s", got, tt.want)
			}
			if check != nil {
				check(t, tt, out)
			}
			want := tt.out
			if want == nil {
				want = tt.in
			}
			if !bytes.Equal(out, want) {
				t.Errorf("output differs\n got %x\nwant %x", out, want)
			}
		})
	}
}
