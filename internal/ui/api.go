//go:build linux

package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/trace"
	"github.com/dsrlab/dsrlab/topology"
)

func writeJSONBytes(w http.ResponseWriter, data []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(data)
}

// getScene is the lab drawn from its recorded topology; 404 while the lab
// has never been seen up.
func (s *Server) getScene(w http.ResponseWriter, r *http.Request) {
	scene, _, err := s.w.current(r.Context())
	switch {
	case err != nil:
		return
	case scene == nil:
		http.Error(w, "lab "+s.cfg.Lab+" has no recorded topology: `dsrlab up` brings it up", http.StatusNotFound)
		return
	}
	writeJSONBytes(w, scene)
}

// getState is the last reading.
func (s *Server) getState(w http.ResponseWriter, r *http.Request) {
	if _, state, err := s.w.current(r.Context()); err == nil {
		writeJSONBytes(w, state)
	}
}

// keepAlive is how often an idle event stream gets a comment, so proxies
// and browsers keep it open.
const keepAlive = 15 * time.Second

// events streams the scene, every reading and the log as Server-Sent
// Events: "scene" when the topology is drawn anew, "state" each reading,
// "log" each change.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch, first, err := s.w.subscribe(r.Context())
	if err != nil {
		return
	}
	defer s.w.unsubscribe(ch)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	// The page reconnects after a second when the stream breaks (the
	// server restarted).
	fmt.Fprint(w, "retry: 1000\n\n")
	for _, ev := range first {
		writeEvent(w, ev)
	}
	flusher.Flush()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev := <-ch:
			writeEvent(w, ev)
			flusher.Flush()
		case <-tick.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			flusher.Flush()
		}
	}
}

// writeEvent writes one event; its data is JSON, one line.
func writeEvent(w http.ResponseWriter, ev event) {
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, ev.data)
}

// traceRequest picks the flow as `dsrlab trace` does.
type traceRequest struct {
	VIP   string `json:"vip"`
	From  string `json:"from"`
	Proto string `json:"proto"`
}

// trace runs `dsrlab trace` and answers its JSON (`--format json`).
func (s *Server) trace(w http.ResponseWriter, r *http.Request) {
	var req traceRequest
	if !decode(w, r, &req) {
		return
	}
	topo, ok := s.topology(w)
	if !ok {
		return
	}
	var out bytes.Buffer
	opt, err := trace.Select(topo, req.VIP, req.From, req.Proto)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	res, err := trace.Run(r.Context(), s.cfg.Engines, topo, opt)
	if err == nil {
		err = res.JSON(&out)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	result := "FAIL"
	if res.Verdict.Pass {
		result = "PASS"
	}
	s.w.note("trace %s from %s: %s: %s", res.Flow.Dst, res.Flow.Client.Name, result, res.Verdict.Summary)
	writeJSONBytes(w, out.Bytes())
}

// captureRequest names an interface and a number of packets.
type captureRequest struct {
	Node  string `json:"node"`
	Iface string `json:"iface"`
	Count int    `json:"count"`
	// Seconds bounds the wait for them (default captureWait).
	Seconds int `json:"seconds"`
}

// Capture bounds: a page asks for a look at a link, not a recording.
const (
	maxCapture  = 10000
	captureWait = 10 * time.Second
	maxWait     = 60 * time.Second
)

// ifaceName is what an interface name may be (no path, no option).
var ifaceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,14}$`)

// capture answers a pcap file of the packets seen on node:iface.
func (s *Server) capture(w http.ResponseWriter, r *http.Request) {
	var req captureRequest
	if !decode(w, r, &req) {
		return
	}
	topo, ok := s.topology(w)
	if !ok {
		return
	}
	wait := time.Duration(req.Seconds) * time.Second
	switch {
	case topo.Node(req.Node) == nil:
		http.Error(w, fmt.Sprintf("lab %s has no node %q", s.cfg.Lab, req.Node), http.StatusBadRequest)
		return
	case !ifaceName.MatchString(req.Iface):
		http.Error(w, fmt.Sprintf("%q is not an interface name", req.Iface), http.StatusBadRequest)
		return
	case req.Count < 1 || req.Count > maxCapture:
		http.Error(w, fmt.Sprintf("count %d: want 1 to %d packets", req.Count, maxCapture), http.StatusBadRequest)
		return
	case wait < 0 || wait > maxWait:
		http.Error(w, fmt.Sprintf("seconds %d: want at most %d", req.Seconds, int(maxWait.Seconds())), http.StatusBadRequest)
		return
	case wait == 0:
		wait = captureWait
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	w.Header().Set("Content-Type", "application/vnd.tcpdump.pcap")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s-%s.pcap"`, s.cfg.Lab, req.Node, req.Iface))
	// The pcap streams: once its header is out, a failure can only end it.
	out := &trackedWriter{w: w}
	if err := s.cfg.Capture(ctx, s.cfg.Engines, topo, req.Node, req.Iface, req.Count, out); err != nil && !out.written {
		w.Header().Del("Content-Disposition")
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
	}
}

// trackedWriter remembers whether anything was written.
type trackedWriter struct {
	w       http.ResponseWriter
	written bool
}

func (t *trackedWriter) Write(p []byte) (int, error) {
	t.written = true
	n, err := t.w.Write(p)
	if f, ok := t.w.(http.Flusher); ok {
		f.Flush()
	}
	return n, err
}

// topology is the lab's recorded topology, or a 409 saying it is down.
func (s *Server) topology(w http.ResponseWriter) (*topology.Topology, bool) {
	topo, err := lab.LoadState(s.cfg.Lab)
	if err != nil {
		http.Error(w, "lab is down: "+err.Error(), http.StatusConflict)
		return nil, false
	}
	return topo, true
}

// decode reads a small JSON body into v, or answers 400.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}
