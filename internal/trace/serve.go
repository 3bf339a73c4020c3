//go:build linux

package trace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/topology"
)

// Serve is a watch on behalf of dsrlab on another host: inside dsrlab's
// agent, it reads a watchRequest and then commands from in, and answers on
// out (the protocol in wire.go). The end of in ends it, and whatever it
// was doing.
func Serve(ctx context.Context, in io.Reader, out io.Writer) error {
	dec, enc := json.NewDecoder(in), json.NewEncoder(out)
	var req watchRequest
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("trace watch: read request: %w", err)
	}
	topo, err := topology.Parse(req.Topology, req.File)
	if err != nil {
		return err
	}
	nss := map[string]*netconf.Namespace{}
	for node, path := range req.Namespaces {
		ns, err := netconf.FromPath(path, node)
		if err != nil {
			closeAll(nss)
			return err
		}
		nss[node] = ns
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := startWatch(ctx, topo, req.Host, nss)
	if err != nil {
		return err
	}
	defer w.close()
	if err := enc.Encode(watchReply{Ready: true}); err != nil {
		return err
	}
	// Commands are read while the last one runs: a cancel, or the end of
	// input, must cut a probe or the settle short.
	type command struct {
		watchCommand
		ctx    context.Context
		cancel context.CancelFunc
	}
	cmds := make(chan command)
	var readErr error
	go func() {
		defer close(cmds)
		defer cancel()
		probing := func() {} // cancels the last probe
		for {
			c := command{ctx: ctx, cancel: func() {}}
			if err := dec.Decode(&c.watchCommand); err != nil {
				if !errors.Is(err, io.EOF) {
					readErr = fmt.Errorf("trace watch: read command: %w", err)
				}
				return
			}
			switch {
			case c.Cancel:
				probing()
				continue
			case c.Probe != nil:
				c.ctx, c.cancel = context.WithCancel(ctx)
				probing = c.cancel
			}
			select {
			case cmds <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	for c := range cmds {
		switch {
		case c.Probe != nil:
			res, err := w.probe(c.ctx, *c.Probe)
			c.cancel()
			if err != nil {
				return err
			}
			if err := enc.Encode(watchReply{Probe: &res}); err != nil {
				return err
			}
		case c.Stop != nil:
			rep, err := w.stop(c.ctx, *c.Stop)
			if err != nil {
				return err
			}
			return enc.Encode(watchReply{Seen: rep})
		}
	}
	return readErr
}
