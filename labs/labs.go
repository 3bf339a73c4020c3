// Package labs holds the topologies dsrlab ships, embedded so the binary can
// start them without any file on disk.
package labs

import _ "embed"

// Reference is the reference DSR lab, for topology.Parse(Reference, ReferenceFile).
//
//go:embed dsr.yaml
var Reference []byte

// ReferenceFile names Reference in error messages, as if read from the repository.
const ReferenceFile = "labs/dsr.yaml"

// NAT is the reference lab with its VIP in NAT mode, the baseline DSR is
// measured against; its containers are prefixed so it runs beside Reference.
//
//go:embed nat.yaml
var NAT []byte

// NATFile names NAT in error messages, as if read from the repository.
const NATFile = "labs/nat.yaml"
