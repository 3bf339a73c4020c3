// Fixture for btfvalue's real-BTF test: a tutorial-style load balancer config in an ARRAY map, and
// variables whose bytes clang lays out itself, so the encoder is checked against the compiler rather
// than against our own arithmetic.
//
// Rebuild (from this directory) after editing, and commit both files:
//
//	clang -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu -c lb.bpf.c -o lb.bpf.o

#include <linux/types.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

struct config {
	__be32 real_server_ip;
	__be32 lb_vip;
	unsigned char src_mac[6];
	unsigned char dst_mac[6];
};

struct {
	__uint(type, 2 /* BPF_MAP_TYPE_ARRAY */);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} lb_map SEC(".maps");

enum mode { MODE_OFF, MODE_DSR = 2, MODE_NAT = 7 };

// Everything the encoder handles that clang lays out: an anonymous union, __be16, a char string, an
// enum, bitfields that share a byte, a signed member and the padding before the 8-byte one.
struct flow {
	union {
		__be32 v4;
		__be32 v6[4];
	};
	__be16 port;
	__u8 proto;
	char name[5];
	enum mode mode;
	__u8 low : 3, high : 5;
	__s16 delta;
	__u64 packets;
};

const volatile struct config cfg = {
	.real_server_ip = __builtin_bswap32(0x0a6fde0b), // 10.111.222.11
	.lb_vip = __builtin_bswap32(0xc0a80a01),         // 192.168.10.1
	.src_mac = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee},
	.dst_mac = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55},
};

const volatile struct flow flow = {
	.v6 = {__builtin_bswap32(0x20010db8), 0, 0, __builtin_bswap32(1)}, // 2001:db8::1
	.port = __builtin_bswap16(8080),
	.proto = 17,
	.name = "web",
	.mode = MODE_NAT,
	.low = 5,
	.high = 17,
	.delta = -300,
	.packets = 0x0102030405060708,
};

SEC("xdp") int pass(void *ctx)
{
	return 2; // XDP_PASS: the program only exists so that the globals are kept with their BTF
}

char _license[] SEC("license") = "Dual MIT/GPL";
