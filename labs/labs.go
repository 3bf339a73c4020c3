// Package labs holds the topologies dsrlab ships, embedded so the binary can
// start the reference lab without any file on disk.
package labs

import _ "embed"

// Reference is the reference DSR lab, for topology.Parse(Reference, ReferenceFile).
//
//go:embed dsr.yaml
var Reference []byte

// ReferenceFile names Reference in error messages, as if read from the repository.
const ReferenceFile = "labs/dsr.yaml"
