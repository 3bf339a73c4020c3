//go:build linux

package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
)

// Kind is what an Event reports.
type Kind uint32

// The values of enum event_kind in drops.bpf.c.
const (
	KindDrop         Kind = 1 // skb:kfree_skb
	KindXDPException Kind = 2 // xdp:xdp_exception
)

// Event is one report of the kernel programs.
type Event struct {
	Kind    Kind
	Netns   uint32 // inode number of the network namespace
	Ifindex uint32 // the device, in that namespace; 0 if the skb had none
	// Reason is the skb_drop_reason of a drop, the XDP action of an
	// exception.
	Reason   uint32
	Location uint64 // the kernel function that freed the skb
	ProgID   uint32 // the XDP program of an exception
	ProgName string
	Len      uint32 // the dropped packet's length
	// Head is the dropped packet from its network header on (truncated),
	// empty when the kernel had not set that header.
	Head []byte
}

// Tracer is the loaded and attached drop tracer. It reports nothing until
// Watch names a namespace.
type Tracer struct {
	objs  dropsObjects
	links []link.Link
	rd    *ringbuf.Reader
}

// LoadTracer loads the programs and attaches them to the tracepoints
// through BTF (tp_btf), which needs no tracefs.
func LoadTracer() (*Tracer, error) {
	t := &Tracer{}
	if err := loadDropsObjects(&t.objs, nil); err != nil {
		return nil, fmt.Errorf("load drop tracer: %w", err)
	}
	for _, p := range []*ebpf.Program{t.objs.OnKfreeSkb, t.objs.OnXdpException} {
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("attach drop tracer: %w", err)
		}
		t.links = append(t.links, l)
	}
	rd, err := ringbuf.NewReader(t.objs.Events)
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("drop tracer events: %w", err)
	}
	t.rd = rd
	return t, nil
}

// Watch adds a network namespace, by inode number, to those reported.
func (t *Tracer) Watch(netns uint32) error {
	return t.objs.LabNetns.Put(netns, uint8(1))
}

// Read waits for the next event. After Close it returns an error
// (ringbuf.ErrClosed).
func (t *Tracer) Read() (Event, error) {
	rec, err := t.rd.Read()
	if err != nil {
		return Event{}, err
	}
	var raw dropsDropEvent
	if err := binary.Read(bytes.NewReader(rec.RawSample), binary.NativeEndian, &raw); err != nil {
		return Event{}, fmt.Errorf("drop tracer: short event: %w", err)
	}
	name := make([]byte, 0, len(raw.ProgName))
	for _, c := range raw.ProgName {
		if c == 0 {
			break
		}
		name = append(name, byte(c))
	}
	return Event{
		Kind: Kind(raw.Kind), Netns: raw.Netns, Ifindex: raw.Ifindex, Reason: raw.Reason,
		Location: raw.Location, ProgID: raw.ProgId, ProgName: string(name), Len: raw.Len,
		Head: bytes.Clone(raw.Data[:min(int(raw.HeadLen), len(raw.Data))]),
	}, nil
}

// Close detaches and unloads the programs and ends a pending Read.
func (t *Tracer) Close() error {
	var errs []error
	if t.rd != nil {
		errs = append(errs, t.rd.Close())
	}
	for _, l := range t.links {
		errs = append(errs, l.Close())
	}
	errs = append(errs, t.objs.Close())
	return errors.Join(errs...)
}

// DropReasons reads the names of enum skb_drop_reason from the running
// kernel's BTF, without their SKB_DROP_REASON_ prefix: the values change
// from one kernel to the next, the names are what the kernel documents.
func DropReasons() (map[uint32]string, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("kernel BTF: %w", err)
	}
	var e *btf.Enum
	if err := spec.TypeByName("skb_drop_reason", &e); err != nil {
		return nil, fmt.Errorf("kernel BTF: enum skb_drop_reason: %w", err)
	}
	names := make(map[uint32]string, len(e.Values))
	for _, v := range e.Values {
		names[uint32(v.Value)] = strings.TrimPrefix(v.Name, "SKB_DROP_REASON_")
	}
	return names, nil
}
