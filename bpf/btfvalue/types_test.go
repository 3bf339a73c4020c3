package btfvalue

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// BTF types as clang emits them for the C in the comments, built by hand so that each test's bytes
// can be worked out from the layout written next to it.

func td(name string, t btf.Type) *btf.Typedef { return &btf.Typedef{Name: name, Type: t} }

func arr(t btf.Type, n uint32) *btf.Array { return &btf.Array{Index: u32, Type: t, Nelems: n} }

func member(name string, t btf.Type, offsetBits uint32) btf.Member {
	return btf.Member{Name: name, Type: t, Offset: btf.Bits(offsetBits)}
}

func bitfield(name string, t btf.Type, offsetBits, size uint32) btf.Member {
	return btf.Member{Name: name, Type: t, Offset: btf.Bits(offsetBits), BitfieldSize: btf.Bits(size)}
}

var (
	uchar = &btf.Int{Name: "unsigned char", Size: 1}
	char  = &btf.Int{Name: "char", Size: 1, Encoding: btf.Signed}
	u16   = &btf.Int{Name: "unsigned short", Size: 2}
	u32   = &btf.Int{Name: "unsigned int", Size: 4}
	u64   = &btf.Int{Name: "unsigned long long", Size: 8}
	s8    = &btf.Int{Name: "signed char", Size: 1, Encoding: btf.Signed}
	s16   = &btf.Int{Name: "short", Size: 2, Encoding: btf.Signed}
	s32   = &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	boolT = &btf.Int{Name: "_Bool", Size: 1, Encoding: btf.Bool}
	float = &btf.Float{Name: "float", Size: 4}

	u8T      = td("__u8", uchar)
	u16T     = td("__u16", u16)
	u32T     = td("__u32", u32)
	u64T     = td("__u64", u64)
	be16     = td("__be16", u16T)
	be32     = td("__be32", u32T)
	be64     = td("__be64", u64T)
	ipT      = td("ip_t", be32) // a user's typedef over __be32 is still network order
	constU32 = &btf.Const{Type: u32T}

	// enum mode { MODE_OFF, MODE_DSR = 2, MODE_NAT = 7 };
	mode = &btf.Enum{Name: "mode", Size: 4, Values: []btf.EnumValue{{Name: "MODE_OFF", Value: 0}, {Name: "MODE_DSR", Value: 2}, {Name: "MODE_NAT", Value: 7}}}
	// enum delta : signed char { DOWN = -1, UP = 1 };
	delta = &btf.Enum{Name: "delta", Size: 1, Signed: true, Values: []btf.EnumValue{{Name: "DOWN", Value: ^uint64(0)}, {Name: "UP", Value: 1}}}

	// struct config { __be32 real_server_ip; __be32 lb_vip; unsigned char src_mac[6]; unsigned char dst_mac[6]; };
	config = &btf.Struct{Name: "config", Size: 20, Members: []btf.Member{
		member("real_server_ip", be32, 0),
		member("lb_vip", be32, 32),
		member("src_mac", arr(uchar, 6), 64),
		member("dst_mac", arr(uchar, 6), 112),
	}}

	// struct padded { __u8 a; __u32 b; __u16 c; }; 3 bytes of padding after a, 2 after c.
	padded = &btf.Struct{Name: "padded", Size: 12, Members: []btf.Member{
		member("a", u8T, 0),
		member("b", u32T, 32),
		member("c", u16T, 64),
	}}

	// union addr { __be32 v4; __be32 v6[4]; };
	addr = &btf.Union{Name: "addr", Size: 16, Members: []btf.Member{member("v4", be32, 0), member("v6", arr(be32, 4), 0)}}
	// union same { __u32 a; __s32 b; };
	same = &btf.Union{Name: "same", Size: 4, Members: []btf.Member{member("a", u32T, 0), member("b", td("__s32", s32), 0)}}
	// Katran's struct ctl_value { union { __u64 value; __u32 ifindex; __u8 mac[6]; }; };
	ctl = &btf.Struct{Name: "ctl_value", Size: 8, Members: []btf.Member{member("", &btf.Union{Size: 8, Members: []btf.Member{
		member("value", u64T, 0), member("ifindex", u32T, 0), member("mac", arr(u8T, 6), 0)}}, 0)}}
	// Katran's struct vip_definition { union { __be32 vip; __be32 vipv6[4]; }; __u16 port; __u8 proto; };
	vipDef = &btf.Struct{Name: "vip_definition", Size: 20, Members: []btf.Member{
		member("", &btf.Union{Size: 16, Members: []btf.Member{member("vip", be32, 0), member("vipv6", arr(be32, 4), 0)}}, 0),
		member("port", u16T, 128), member("proto", u8T, 144)}}

	// struct service {
	//	struct config cfg;              // 0..19
	//	union addr vip;                 // 20..35
	//	__be16 port;                    // 36
	//	__u8 proto;                     // 38
	//	char name[5];                   // 39..43
	//	enum mode mode;                 // 44
	//	struct padded pads[2];          // 48..71
	//	union { __be32 src; __be32 srcv6[4]; }; // 72..87, anonymous
	//	__u8 low : 3, high : 5;         // 88
	//	_Bool up;                       // 89
	//	__s16 weight;                   // 90
	//	__u16 grid[2][2];               // 92..99
	//	__be64 seq;                     // 104 (4 bytes of padding before)
	// };
	service = &btf.Struct{Name: "service", Size: 112, Members: []btf.Member{
		member("cfg", config, 0),
		member("vip", addr, 160),
		member("port", be16, 288),
		member("proto", u8T, 304),
		member("name", arr(char, 5), 312),
		member("mode", mode, 352),
		member("pads", arr(padded, 2), 384),
		member("", &btf.Union{Size: 16, Members: []btf.Member{member("src", be32, 0), member("srcv6", arr(be32, 4), 0)}}, 576),
		bitfield("low", u8T, 704, 3),
		bitfield("high", u8T, 707, 5),
		member("up", boolT, 712),
		member("weight", td("__s16", s16), 720),
		member("grid", arr(arr(u16T, 2), 2), 736),
		member("seq", be64, 832),
	}}

	// struct signedbits { int x : 4; int y : 12; enum delta d; };
	signedbits = &btf.Struct{Name: "signedbits", Size: 3, Members: []btf.Member{
		bitfield("x", s32, 0, 4),
		bitfield("y", s32, 4, 12),
		member("d", delta, 16),
	}}

	// struct counters { __u64 packets; __be32 addr; __u32 bytes; char tag[4]; enum mode mode; };
	counters = &btf.Struct{Name: "counters", Size: 24, Members: []btf.Member{
		member("packets", u64T, 0),
		member("addr", be32, 64),
		member("bytes", u32T, 96),
		member("tag", arr(char, 4), 128),
		member("mode", mode, 160),
	}}
)

// unhex reads bytes written as hex with spaces for readability.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// fakeLab resolves references the way a lab would, from a fixed table.
func fakeLab(ref string, size int) ([]byte, error) {
	table := map[string]map[int]string{
		"real:eth0":   {4: "0a6fde0b", 6: "02aabbccddee", 16: "20010db8000000000000000000000011"},
		"router:eth0": {4: "0a6fde01", 6: "021122334455"},
		"katran:eth0": {6: "020000000001"},
	}
	fams, ok := table[ref]
	if !ok {
		return nil, fmt.Errorf("no node %q in the lab", strings.Split(ref, ":")[0])
	}
	h, ok := fams[size]
	if !ok {
		return nil, errors.New("that interface has no address of this family")
	}
	b, _ := hex.DecodeString(h)
	return b, nil
}
