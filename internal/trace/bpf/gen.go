// Package bpf holds the kernel side of dsrlab trace: a tp_btf program on
// skb:kfree_skb that reports the packets the kernel drops in the lab's
// network namespaces with the kernel's drop reason, and one on
// xdp:xdp_exception for XDP programs that aborted there.
//
// The generated *_bpfel.go and *_bpfel.o files are committed, so building
// needs no clang; the kernel types are declared by hand in kernel.h.
package bpf

//go:generate go tool bpf2go -tags linux -target bpfel -type drop_event drops drops.bpf.c -- -I. -I../../../bpf/headers -I../../../bpf/prog/include/bpf -O2 -g -Wall -Werror
