//go:build linux

package main

import (
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/internal/runtime/docker"
)

// openRuntime is the one place a command gets its container runtime from,
// so that every command talks to the same engine the same way. The returned
// function releases it.
func openRuntime() (runtime.ImageBuilder, func(), error) {
	rt, err := docker.New()
	if err != nil {
		return nil, nil, err
	}
	return rt, func() { rt.Close() }, nil
}
