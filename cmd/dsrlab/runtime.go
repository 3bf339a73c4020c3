//go:build linux

package main

import (
	"fmt"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/internal/runtime/docker"
	"github.com/dsrlab/dsrlab/topology"
)

// openRuntime is the one place a command gets the local host's container
// runtime from, so that every command talks to the same engine the same
// way. The returned function releases it.
func openRuntime() (runtime.ImageBuilder, func(), error) {
	rt, err := docker.New()
	if err != nil {
		return nil, nil, err
	}
	return rt, func() { rt.Close() }, nil
}

// openEngines connects to the engine of every host given (the local one
// included), by host name.
func openEngines(hosts map[string]lab.HostRecord) (runtime.Set, func(), error) {
	rts := runtime.Set{}
	var closers []func() error
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	for name, h := range hosts {
		var d *docker.Docker
		var err error
		if name == topology.LocalHost {
			d, err = docker.New()
		} else {
			var tls *docker.TLS
			if h.TLS != nil {
				tls = &docker.TLS{CA: h.TLS.CA, Cert: h.TLS.Cert, Key: h.TLS.Key}
			}
			d, err = docker.NewAt(h.Docker, tls)
		}
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("host %s: %w", name, err)
		}
		rts[name], closers = d, append(closers, d.Close)
	}
	if rts[topology.LocalHost] == nil {
		d, err := docker.New()
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		rts[topology.LocalHost], closers = d, append(closers, d.Close)
	}
	return rts, closeAll, nil
}

// hostRecords are the engines of a topology's hosts.
func hostRecords(t *topology.Topology) map[string]lab.HostRecord {
	hosts := map[string]lab.HostRecord{}
	for _, h := range t.Hosts {
		hosts[h.Name] = lab.HostRecord{Docker: h.Docker, TLS: h.TLS}
	}
	return hosts
}
