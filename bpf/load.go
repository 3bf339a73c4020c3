//go:build linux

package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
)

// loadObjects loads one bpf2go object set from spec, keeping the verifier
// log on failure: the short form of a verifier error names only its last
// line.
func loadObjects(what string, spec *ebpf.CollectionSpec, objs any) error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("load %s: remove memlock limit: %w", what, err)
	}
	if err := spec.LoadAndAssign(objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return fmt.Errorf("load %s: %w\n%+v", what, err, ve)
		}
		return fmt.Errorf("load %s: %w", what, err)
	}
	return nil
}

// be32 returns an IPv4 address as the uint32 whose memory holds it in
// network byte order, as the C side's __be32 fields do.
func be32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.NativeEndian.Uint32(b[:])
}

// addrWords returns an address of either family in the 16-byte form of the
// maps' keys and values (dsr_structs.h): IPv6 as is, IPv4 mapped
// (::ffff:a.b.c.d), as four words whose memory holds it in network byte
// order.
func addrWords(a netip.Addr) [4]uint32 {
	b := a.As16()
	var w [4]uint32
	for i := range w {
		w[i] = binary.NativeEndian.Uint32(b[4*i:])
	}
	return w
}

// addrFromWords reads the 16-byte form back, an IPv4-mapped address as
// IPv4.
func addrFromWords(w [4]uint32) netip.Addr {
	var b [16]byte
	for i, v := range w {
		binary.NativeEndian.PutUint32(b[4*i:], v)
	}
	return netip.AddrFrom16(b).Unmap()
}

// be16 returns the port as the uint16 whose memory holds it in network byte
// order, as the C side's __be16 fields do.
func be16(port uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], port)
	return binary.NativeEndian.Uint16(b[:])
}

func portFromBE16(v uint16) uint16 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], v)
	return binary.BigEndian.Uint16(b[:])
}

// sumPerCPU adds up one counter of a per-CPU array.
func sumPerCPU(m *ebpf.Map, key any) (uint64, error) {
	var perCPU []uint64
	if err := m.Lookup(key, &perCPU); err != nil {
		return 0, err
	}
	var sum uint64
	for _, v := range perCPU {
		sum += v
	}
	return sum, nil
}
