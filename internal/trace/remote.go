//go:build linux

package trace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/dsrlab/dsrlab/internal/image"
	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// remoteGrace is how long a watch on another host may still take to
// report once the trace is cut short (Ctrl-C): a trace shows what was seen
// until then, on every host, as it does on one.
const remoteGrace = 5 * time.Second

// remoteWatch is the watch of another host: `dsrlab trace --watch` in
// dsrlab's agent there (Serve), spoken to over the exec's standard
// streams.
type remoteWatch struct {
	ctx     context.Context // the trace's
	host    string
	mu      sync.Mutex // one command at a time on stdin
	cmds    *json.Encoder
	stdin   *io.PipeWriter
	replies *json.Decoder
	stdout  *io.PipeReader
	// release ends the exec's grace after the trace's context.
	release func() bool
	done    chan struct{} // the exec ended; the fields below are set
	stderr  bytes.Buffer
	code    int
	err     error
}

// startRemote starts the watch of host's nodes through its agent, and
// returns once the agent says its sockets and tracer are in place.
func startRemote(ctx context.Context, rts runtime.Set, t *topology.Topology, host string) (*remoteWatch, error) {
	paths, err := lab.NamespacePaths(ctx, rts, t, host)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", host, err)
	}
	resolved, err := t.Resolved()
	if err != nil {
		return nil, err
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	r := &remoteWatch{ctx: ctx, host: host, cmds: json.NewEncoder(inW), stdin: inW, replies: json.NewDecoder(outR), stdout: outR,
		done: make(chan struct{})}
	execCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.release = context.AfterFunc(ctx, func() { time.AfterFunc(remoteGrace, cancel) })
	go func() {
		defer close(r.done)
		defer cancel()
		r.code, r.err = lab.ExecAgent(execCtx, rts, t, host, []string{image.BinaryPath, "trace", "--watch"},
			runtime.ExecIO{Stdin: inR, Stdout: outW, Stderr: &r.stderr})
		// The replies end with the command, and what is still to be
		// sent goes nowhere.
		outW.Close()
		inR.CloseWithError(errors.New("the watch ended"))
	}()
	if err := r.send(watchRequest{Topology: resolved, File: t.File, Host: host, Namespaces: paths}); err != nil {
		return nil, err
	}
	rep, err := r.receive()
	if err == nil && !rep.Ready {
		err = r.fail(errors.New("no ready line"))
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (r *remoteWatch) probe(ctx context.Context, p probeRequest) (probeResult, error) {
	if err := r.send(watchCommand{Probe: &p}); err != nil {
		return probeResult{}, err
	}
	// Cut short here, the probe is cut short there.
	defer context.AfterFunc(ctx, func() { r.encode(watchCommand{Cancel: true}) })()
	rep, err := r.receive()
	if err == nil && rep.Probe == nil {
		err = r.fail(errors.New("no probe result"))
	}
	if err != nil {
		return probeResult{}, err
	}
	return *rep.Probe, nil
}

func (r *remoteWatch) stop(_ context.Context, f flowRef) (*hostReport, error) {
	if err := r.send(watchCommand{Stop: &f}); err != nil {
		return nil, err
	}
	rep, err := r.receive()
	if err == nil && rep.Seen == nil {
		err = r.fail(errors.New("no report"))
	}
	if err != nil {
		return nil, err
	}
	return rep.Seen, nil
}

// close ends the watch: the end of its input stops it, wherever it was.
func (r *remoteWatch) close() {
	r.stdin.Close()
	r.stdout.Close()
	<-r.done
	r.release()
}

func (r *remoteWatch) encode(v any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmds.Encode(v)
}

func (r *remoteWatch) send(v any) error {
	if err := r.encode(v); err != nil {
		return r.fail(err)
	}
	return nil
}

func (r *remoteWatch) receive() (watchReply, error) {
	var rep watchReply
	if err := r.replies.Decode(&rep); err != nil {
		return rep, r.fail(err)
	}
	return rep, nil
}

// fail ends the watch after err in talking to it, and says why it
// failed: the agent's own words first, else the exec's.
func (r *remoteWatch) fail(err error) error {
	r.close()
	switch msg := strings.TrimSpace(strings.TrimPrefix(r.stderr.String(), "Error: ")); {
	case msg != "":
		err = errors.New(msg)
	case r.ctx.Err() != nil:
		err = r.ctx.Err()
	case r.err != nil:
		err = r.err
	case errors.Is(err, io.EOF):
		err = fmt.Errorf("the agent's watch exited %d without a report", r.code)
	}
	return fmt.Errorf("host %s: trace watch: %w", r.host, err)
}
