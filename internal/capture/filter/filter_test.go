package filter

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"golang.org/x/net/bpf"

	pt "github.com/dsrlab/dsrlab/internal/capture/packettest"
)

// l3 are the network-layer packets every expression is tried on; each
// filter case lists the ones it must accept, and every other one must be
// rejected.
var l3 = map[string][]byte{
	"tcp4": pt.IPv4Header{Src: pt.Addr("10.0.0.1"), Dst: pt.Addr("10.0.0.2"), Proto: pt.TCP}.
		Marshal(pt.TCPHeader{SrcPort: 40000, DstPort: 80, Flags: pt.SYN}.Marshal(nil)),
	"udp4": pt.IPv4Header{Src: pt.Addr("10.0.0.1"), Dst: pt.Addr("10.0.0.3"), Proto: pt.UDP}.
		Marshal(pt.UDPHeader{SrcPort: 5353, DstPort: 53}.Marshal([]byte("q"))),
	"icmp4": pt.IPv4Header{Src: pt.Addr("10.0.0.2"), Dst: pt.Addr("10.0.0.1"), Proto: pt.ICMP}.
		Marshal(pt.ICMPHeader{Type: 8, Rest: 0x00010001}.Marshal(nil)),
	// 8 bytes of options: ports are 8 bytes further than usual.
	"opts": pt.IPv4Header{Src: pt.Addr("10.0.0.5"), Dst: pt.Addr("10.0.0.6"), Proto: pt.TCP, Options: []byte{1, 1, 1, 1, 1, 1, 1, 0}}.
		Marshal(pt.TCPHeader{SrcPort: 1234, DstPort: 80, Flags: pt.ACK}.Marshal(nil)),
	"frag1": pt.IPv4Header{Src: pt.Addr("10.0.0.1"), Dst: pt.Addr("10.0.0.2"), Proto: pt.UDP, MoreFrags: true}.
		Marshal(pt.UDPHeader{SrcPort: 53, DstPort: 9999}.Marshal(make([]byte, 16))),
	// A later fragment whose payload would read as ports 80 > 53 if the
	// filter forgot that it has no transport header.
	"frag2": pt.IPv4Header{Src: pt.Addr("10.0.0.1"), Dst: pt.Addr("10.0.0.2"), Proto: pt.UDP, FragOffset: 3}.
		Marshal([]byte{0, 80, 0, 53, 0, 0, 0, 0}),
	"ipip": pt.IPv4Header{Src: pt.Addr("10.111.221.11"), Dst: pt.Addr("10.111.222.11"), Proto: pt.IPIP}.
		Marshal(pt.IPv4Header{Src: pt.Addr("10.111.220.11"), Dst: pt.Addr("192.168.10.1"), Proto: pt.TCP}.
			Marshal(pt.TCPHeader{SrcPort: 40612, DstPort: 50007, Flags: pt.SYN}.Marshal(nil))),
	"tcp6": pt.IPv6Header{Src: pt.Addr("2001:db8::1"), Dst: pt.Addr("2001:db8::2"), Next: pt.TCP}.
		Marshal(pt.TCPHeader{SrcPort: 40000, DstPort: 80, Flags: pt.SYN}.Marshal(nil)),
	"udp6": pt.IPv6Header{Src: pt.Addr("2001:db8::1"), Dst: pt.Addr("2001:db8:1::9"), Next: pt.UDP}.
		Marshal(pt.UDPHeader{SrcPort: 5353, DstPort: 53}.Marshal(nil)),
	"icmp6": pt.IPv6Header{Src: pt.Addr("fe80::1"), Dst: pt.Addr("ff02::1"), Next: pt.ICMPv6}.
		Marshal(pt.ICMPHeader{Type: 128}.Marshal(nil)),
}

var ethernetFrames = func() map[string][]byte {
	// An ARP request from 10.0.0.7 for 10.0.0.8.
	arp := append([]byte{0, 1, 8, 0, 6, 4, 0, 1}, pt.MACA...)
	arp = append(append(arp, 10, 0, 0, 7), make([]byte, 6)...)
	arp = append(arp, 10, 0, 0, 8)
	m := map[string][]byte{"arp": pt.Ethernet(arp, 0x0806)}
	for name, p := range l3 {
		m[name] = pt.Ethernet(p)
	}
	return m
}()

const allIPv4 = "tcp4 udp4 icmp4 opts frag1 frag2 ipip"

var verdictCases = []struct {
	expr   string
	accept string // names of the packets that pass, space-separated
}{
	{"", allIPv4 + " tcp6 udp6 icmp6 arp"},
	{"ip", allIPv4},
	{"ip6", "tcp6 udp6 icmp6"},
	{"arp", "arp"},
	{"tcp", "tcp4 opts tcp6"},
	{"udp", "udp4 frag1 frag2 udp6"},
	{"icmp", "icmp4"},
	{"icmp6", "icmp6"},
	{"proto 4", "ipip"},
	{"ip proto 4", "ipip"},
	{"ip proto ipip", "ipip"},
	{`ip proto \tcp`, "tcp4 opts"},
	{"ip6 proto 6", "tcp6"},
	{"proto udp", "udp4 frag1 frag2 udp6"},
	{"host 10.0.0.1", "tcp4 udp4 icmp4 frag1 frag2"},
	{"src host 10.0.0.1", "tcp4 udp4 frag1 frag2"},
	{"dst host 10.0.0.1", "icmp4"},
	{"ip host 10.0.0.6", "opts"},
	// As in libpcap, IPv4 hosts and nets match ARP addresses too.
	{"host 10.0.0.7", "arp"},
	{"src host 10.0.0.7", "arp"},
	{"dst host 10.0.0.7", ""},
	{"arp dst host 10.0.0.8", "arp"},
	{"ip host 10.0.0.7", ""},
	// host and net see the outer header of a tunnelled packet only.
	{"host 10.111.221.11", "ipip"},
	{"src 10.111.221.11", "ipip"},
	{"host 192.168.10.1", ""},
	{"10.0.0.2", "tcp4 icmp4 frag1 frag2"},
	{"src or dst host 10.0.0.2", "tcp4 icmp4 frag1 frag2"},
	{"src and dst net 10.0.0.0/24", "tcp4 udp4 icmp4 opts frag1 frag2 arp"},
	{"net 10.0.0.0/24", "tcp4 udp4 icmp4 opts frag1 frag2 arp"},
	{"ip net 10.0.0.0/24", "tcp4 udp4 icmp4 opts frag1 frag2"},
	{"10.111.0.0/16", "ipip"},
	{"dst net 10.0.0.0/30", "tcp4 udp4 icmp4 frag1 frag2"},
	{"net 10.0.0.4 mask 255.255.255.252", "opts arp"},
	{"net 0.0.0.0/0", allIPv4 + " arp"},
	{"host 2001:db8::1", "tcp6 udp6"},
	{"dst host 2001:db8::2", "tcp6"},
	{"net 2001:db8::/32", "tcp6 udp6"},
	{"net 2001:db8:1::/48", "udp6"},
	{"ip6 dst net ff00::/8", "icmp6"},
	{"net ::/0", "tcp6 udp6 icmp6"},
	{"port 80", "tcp4 opts tcp6"},
	{"port 53", "udp4 frag1 udp6"},
	{"src port 53", "frag1"},
	{"dst port 53", "udp4 udp6"},
	{"tcp port 80", "tcp4 opts tcp6"},
	{"tcp dst port 80", "tcp4 opts tcp6"},
	{"udp port 80", ""},
	{"port 9999", "frag1"},
	{"port 40612", ""}, // only the inner header of ipip has it
	{"portrange 50-100", "tcp4 opts tcp6 udp4 frag1 udp6"},
	{"udp portrange 5000-6000", "udp4 udp6"},
	{"tcp and not dst host 10.0.0.2", "opts tcp6"},
	{"not ip", "tcp6 udp6 icmp6 arp"},
	{"not not tcp", "tcp4 opts tcp6"},
	{"! ip6 && ! arp", allIPv4},
	{"udp or icmp", "udp4 frag1 frag2 udp6 icmp4"},
	{"udp||icmp", "udp4 frag1 frag2 udp6 icmp4"},
	{"host 10.0.0.1 and (udp or icmp)", "udp4 icmp4 frag1 frag2"},
	{"(((tcp)))", "tcp4 opts tcp6"},
	// tcpdump's grouping: left to right, "and" no tighter than "or".
	{"icmp6 or udp and host 10.0.0.1", "udp4 frag1 frag2"},
	{"icmp6 or (udp and host 10.0.0.1)", "icmp6 udp4 frag1 frag2"},
	// A bare value inherits the previous primitive's qualifiers.
	{"host 10.0.0.1 or 10.0.0.6", "tcp4 udp4 icmp4 frag1 frag2 opts"},
	{"port 80 or 53", "tcp4 opts tcp6 udp4 frag1 udp6"},
	{"dst port 80 or 9999", "tcp4 opts tcp6 frag1"},
}

func run(t *testing.T, prog []bpf.Instruction, pkt []byte) bool {
	t.Helper()
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatalf("VM rejects the program: %v\n%s", err, listing(prog))
	}
	n, err := vm.Run(pkt)
	if err != nil {
		t.Fatal(err)
	}
	return n != 0
}

func listing(prog []bpf.Instruction) string {
	var b strings.Builder
	for i, ins := range prog {
		fmt.Fprintf(&b, "(%03d) %v\n", i, ins)
	}
	return b.String()
}

func checkVerdicts(t *testing.T, expr string, link LinkType, pkts map[string][]byte, accept string) {
	t.Helper()
	prog, err := Compile(expr, link)
	if err != nil {
		t.Fatalf("%q: %v", expr, err)
	}
	want := strings.Fields(accept)
	var got []string
	for name, pkt := range pkts {
		if run(t, prog, pkt) {
			got = append(got, name)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("%q accepts %v, want %v\n%s", expr, got, want, listing(prog))
	}
}

func TestVerdictsOnEthernet(t *testing.T) {
	for _, c := range verdictCases {
		checkVerdicts(t, c.expr, Ethernet, ethernetFrames, c.accept)
	}
}

func TestVerdictsOnRawIP(t *testing.T) {
	for _, c := range verdictCases {
		accept := strings.ReplaceAll(" "+c.accept+" ", " arp ", " ") // no ARP without a link header
		checkVerdicts(t, c.expr, RawIP, l3, accept)
	}
}

func TestTruncatedPacketsAreRejected(t *testing.T) {
	short := ethernetFrames["tcp4"][:14+20+1] // IP header, no ports
	for _, expr := range []string{"port 80", "not port 80"} {
		prog, err := Compile(expr, Ethernet)
		if err != nil {
			t.Fatal(err)
		}
		// Like the kernel, the program gives up (rejects) when a load
		// runs past the end, whatever the negation above it says.
		if run(t, prog, short) {
			t.Errorf("%q accepts a packet cut before its ports", expr)
		}
	}
}

func TestProgramShape(t *testing.T) {
	prog, err := Compile("ip src host 10.0.0.1", Ethernet)
	if err != nil {
		t.Fatal(err)
	}
	want := []bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x0800, SkipTrue: 0, SkipFalse: 3},
		bpf.LoadAbsolute{Off: 26, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x0a000001, SkipTrue: 0, SkipFalse: 1},
		bpf.RetConstant{Val: Snaplen},
		bpf.RetConstant{Val: 0},
	}
	if !reflect.DeepEqual(prog, want) {
		t.Errorf("got\n%swant\n%s", listing(prog), listing(want))
	}
	// The empty filter is a single accept, not a jump to one.
	if prog, _ := Compile("  ", Ethernet); !reflect.DeepEqual(prog, []bpf.Instruction{bpf.RetConstant{Val: Snaplen}, bpf.RetConstant{Val: 0}}) {
		t.Errorf("empty filter:\n%s", listing(prog))
	}
}

// hosts returns "host 10.1.0.1 or host 10.1.0.2 ..." with n hosts.
func hosts(n int) string {
	var parts []string
	for i := 1; i <= n; i++ {
		parts = append(parts, fmt.Sprintf("host 10.1.%d.%d", i/250, i%250+1))
	}
	return strings.Join(parts, " or ")
}

func TestLongProgramsJumpFar(t *testing.T) {
	const n = 120 // about 1000 instructions
	udpFrom := func(addr string) []byte {
		return pt.Ethernet(pt.IPv4Header{Src: pt.Addr(addr), Dst: pt.Addr("10.9.9.9"), Proto: pt.UDP}.
			Marshal(pt.UDPHeader{SrcPort: 1, DstPort: 2}.Marshal(nil)))
	}
	first, last, none := udpFrom("10.1.0.2"), udpFrom(fmt.Sprintf("10.1.%d.%d", n/250, n%250+1)), udpFrom("10.2.0.1")
	for _, c := range []struct {
		expr              string
		first, last, none bool
	}{
		{hosts(n), true, true, false},
		{"not (" + hosts(n) + ")", false, false, true},
		{"(" + hosts(n) + ") and udp", true, true, false},
		{"udp and not (" + hosts(n) + ")", false, false, true},
	} {
		prog, err := Compile(c.expr, Ethernet)
		if err != nil {
			t.Fatal(err)
		}
		if len(prog) < 300 {
			t.Fatalf("%d instructions: too short to need far jumps", len(prog))
		}
		if !slices.ContainsFunc(prog, func(i bpf.Instruction) bool { _, ok := i.(bpf.Jump); return ok }) {
			t.Errorf("no far jump in %d instructions", len(prog))
		}
		if _, err := bpf.Assemble(prog); err != nil {
			t.Fatal(err)
		}
		for _, p := range []struct {
			pkt  []byte
			want bool
		}{{first, c.first}, {last, c.last}, {none, c.none}} {
			if got := run(t, prog, p.pkt); got != p.want {
				t.Errorf("%.40s...: verdict %v, want %v", c.expr, got, p.want)
			}
		}
	}
}

func TestTooLongIsRefused(t *testing.T) {
	_, err := Compile(hosts(600), Ethernet)
	if err == nil || !strings.Contains(err.Error(), "limit of 4096") {
		t.Errorf("err = %v, want the kernel's instruction limit", err)
	}
}

func TestErrorsNameThePosition(t *testing.T) {
	for _, c := range []struct {
		expr   string
		column int
		msg    string
	}{
		{"host", 5, `expected a value after "host", got the end`},
		{"tcp and", 8, "unexpected end of expression"},
		{"host and tcp", 6, `expected a value after "host", got "and"`},
		{"port http", 6, "service names are not resolved"},
		{"host example.com", 6, "names are not resolved"},
		{"net 10.0.0.1/8", 5, "non-network bits set (did you mean 10.0.0.0/8?)"},
		{"net 10.0.0.0 mask 255.0.255.0", 19, "contiguous IPv4 netmask"},
		{"(tcp or udp", 1, "unclosed parenthesis"},
		{"tcp)", 4, `unexpected ")"`},
		{"tcp udp", 5, `unexpected "udp"`},
		{"tcp & udp", 5, `did you mean "&&"`},
		{"tcp host 10.0.0.1", 1, `"tcp" cannot qualify "host"`},
		{"udp and ip port 53", 9, `"ip" cannot qualify "port"`},
		{"ip host 2001:db8::1", 9, "not an IPv4 address"},
		{"arp host 2001:db8::1", 10, "not an IPv4 address"},
		{"ip6 net 10.0.0.0/8", 9, "not an IPv6 address"},
		{"proto 300", 7, "want a number 0-255"},
		{"80", 1, "expected a primitive"},
		{"tcp or 80", 8, "expected a primitive"},
		{"portrange 10", 11, "want LOW-HIGH"},
		{"not", 4, "unexpected end of expression"},
		{"tcp src 10.0.0.1", 1, `"tcp" cannot qualify "host"`},
		{"icmp port 1", 1, `"icmp" cannot qualify "port"`},
	} {
		_, err := Compile(c.expr, Ethernet)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: err = %v, want a SyntaxError", c.expr, err)
			continue
		}
		if se.Pos+1 != c.column || !strings.Contains(se.Msg, c.msg) {
			t.Errorf("%q: column %d %q, want column %d %q", c.expr, se.Pos+1, se.Msg, c.column, c.msg)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("column %d", c.column)) {
			t.Errorf("%q: message %q does not name the column", c.expr, err)
		}
	}
}

func TestUnsupportedLinkType(t *testing.T) {
	if _, err := Compile("tcp", LinkType(113)); err == nil {
		t.Error("Linux cooked captures are not supported, yet Compile accepted one")
	}
}

// TestLongExpressionErrors checks that an error about a huge expression
// (a script's generated filter) quotes only the part around the problem,
// not the whole expression.
func TestLongExpressionErrors(t *testing.T) {
	hosts := strings.Repeat("host 10.0.0.1 or ", 3500) // about 60 KB
	for _, c := range []struct {
		name, expr, want string
	}{
		{"syntax error at the end", hosts + "host 10.0.0.999", `or host 10.0.0.999" (`},
		{"syntax error in the middle", hosts + "bogus or " + hosts + "tcp", `or bogus or host`},
		{"too many instructions", hosts + "tcp", `"host 10.0.0.1 or host`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile(c.expr, Ethernet)
			if err == nil {
				t.Fatal("compiled")
			}
			msg := err.Error()
			if len(msg) > 400 || !strings.Contains(msg, c.want) || !strings.Contains(msg, fmt.Sprintf("(%d bytes)", len(c.expr))) {
				t.Errorf("error of %d bytes: %.500s\nwant at most 400, quoting %s and the length", len(msg), msg, c.want)
			}
		})
	}
	if _, err := Compile("tcp port 99999", Ethernet); err == nil || !strings.Contains(err.Error(), `filter "tcp port 99999"`) {
		t.Errorf("a short expression is quoted whole: %v", err)
	}
}
