package btfvalue

import (
	"bytes"
	"testing"

	"github.com/cilium/ebpf"
)

// TestClangBTF runs the codec on the BTF clang really emits (testdata/lb.bpf.c, compiled and committed),
// where __be32 is a chain of typedefs, and checks the bytes against the ones clang laid out itself
// for the same values in the object's .rodata.
func TestClangBTF(t *testing.T) {
	spec, err := ebpf.LoadCollectionSpec("testdata/lb.bpf.o")
	if err != nil {
		t.Fatal(err)
	}
	lb, ok := spec.Maps["lb_map"]
	if !ok {
		t.Fatal("no lb_map in testdata/lb.bpf.o")
	}

	key, err := EncodeString(lb.Key, "0", nil)
	if err != nil || !bytes.Equal(key, []byte{0, 0, 0, 0}) {
		t.Errorf("key 0: %x, %v", key, err)
	}

	for _, tc := range []struct {
		variable string
		in       string
		text     string
	}{
		{"cfg", "{real_server_ip: real:eth0, lb_vip: 192.168.10.1, src_mac: real:eth0, dst_mac: router:eth0}",
			"{real_server_ip: 10.111.222.11, lb_vip: 192.168.10.1, src_mac: 02:aa:bb:cc:dd:ee, dst_mac: 02:11:22:33:44:55}"},
		{"flow", "{v6: 2001:db8::1, port: 8080, proto: 17, name: web, mode: MODE_NAT, low: 5, high: 17, delta: -300, packets: 0x0102030405060708}",
			"{v6: 2001:db8::1, port: 8080, proto: 17, name: web, mode: MODE_NAT, low: 5, high: 17, delta: -300, packets: 72623859790382856}"},
	} {
		t.Run(tc.variable, func(t *testing.T) {
			v, ok := spec.Variables[tc.variable]
			if !ok {
				t.Fatalf("no variable %s", tc.variable)
			}
			typ := v.Type.Type
			if tc.variable == "cfg" {
				// The map's value type, not the variable's const volatile one: what the loader will use.
				typ = lb.Value
			}
			got, err := EncodeString(typ, tc.in, fakeLab)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, v.Value) {
				t.Errorf("encoded %x\n  clang %x", got, v.Value)
			}
			dec, err := Decode(v.Type.Type, v.Value)
			if err != nil {
				t.Fatal(err)
			}
			if dec.String() != tc.text {
				t.Errorf("decoded\n got %s\nwant %s", dec, tc.text)
			}
		})
	}
}
