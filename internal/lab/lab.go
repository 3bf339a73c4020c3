// Package lab turns a resolved topology into running containers, links and
// XDP programs (Up), removes everything a lab owns (Down), and reads a
// running lab back from Docker and the kernel (Inspect, Verify). It owns the
// order of the steps, rollback on failure, and the progress a user sees.
package lab

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

// Labels put on every container of a lab. Down finds a lab by these alone,
// so it works when the topology file has changed or is gone.
const (
	LabelLab      = "dsrlab.lab"
	LabelNode     = "dsrlab.node"
	LabelKind     = "dsrlab.kind"
	LabelTopology = "dsrlab.topology"
)

// Summary is what Up reports at the end.
type Summary struct {
	Lab        string            `json:"lab"`
	Containers []string          `json:"containers"`
	Links      int               `json:"links"`
	VIPs       []string          `json:"vips"`
	XDP        map[string]string `json:"xdp"`   // katran node -> "native" / "generic"
	NAT        map[string]string `json:"nat"`   // katran node -> NAT services
	Decap      map[string]string `json:"decap"` // real node -> how it decapsulates
	Changes    int               `json:"changes"`
	Elapsed    time.Duration     `json:"elapsed_ns"`
}

// Reporter shows progress as it happens.
type Reporter interface {
	// Step reports a finished step with its duration; err is nil on success.
	Step(name string, took time.Duration, detail string, err error)
	// Detail reports one action inside a step (shown when verbose).
	Detail(step, msg string)
	// Note reports something the user should know whatever the verbosity:
	// a fallback taken, a rollback.
	Note(msg string)
}

// TextReporter writes one line per step for people; verbose adds one line
// per action inside a step.
func TextReporter(w io.Writer, verbose bool) Reporter { return textReporter{w, verbose} }

type textReporter struct {
	w       io.Writer
	verbose bool
}

func (r textReporter) Step(name string, took time.Duration, detail string, err error) {
	took = took.Round(time.Millisecond)
	if err != nil {
		fmt.Fprintf(r.w, "  %-11s FAILED after %v\n", name, took)
		return
	}
	fmt.Fprintf(r.w, "  %-11s %s (%v)\n", name, detail, took)
}

func (r textReporter) Detail(step, msg string) {
	if r.verbose {
		fmt.Fprintf(r.w, "  %-11s   %s\n", "", msg)
	}
}

func (r textReporter) Note(msg string) { fmt.Fprintf(r.w, "  %s\n", msg) }

// JSONReporter writes one JSON object per event, for CI logs; verbose
// adds the actions inside each step.
func JSONReporter(w io.Writer, verbose bool) Reporter {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return jsonReporter{slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))}
}

type jsonReporter struct{ l *slog.Logger }

func (r jsonReporter) Step(name string, took time.Duration, detail string, err error) {
	if err != nil {
		r.l.Error("step", "step", name, "took_ms", took.Milliseconds(), "error", err.Error())
		return
	}
	r.l.Info("step", "step", name, "took_ms", took.Milliseconds(), "detail", detail)
}

func (r jsonReporter) Detail(step, msg string) { r.l.Debug("detail", "step", step, "msg", msg) }
func (r jsonReporter) Note(msg string)         { r.l.Warn("note", "msg", msg) }

// QuietReporter shows nothing; errors still come back to the caller.
func QuietReporter() Reporter { return quietReporter{} }

type quietReporter struct{}

func (quietReporter) Step(string, time.Duration, string, error) {}
func (quietReporter) Detail(string, string)                     {}
func (quietReporter) Note(string)                               {}

// WriteJSON writes v indented, the output format of every --format json.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Grouped prints node -> value pairs, grouping the nodes that share a value
// so that a lab of 64 reals prints one line, not 64.
func Grouped(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	byValue := map[string][]string{}
	for node, v := range m {
		byValue[v] = append(byValue[v], node)
	}
	parts := make([]string, 0, len(byValue))
	for v, nodes := range byValue {
		sort.Strings(nodes)
		who := strings.Join(nodes, ", ")
		if len(nodes) > 3 {
			who = fmt.Sprintf("%d nodes (%s ... %s)", len(nodes), nodes[0], nodes[len(nodes)-1])
		}
		parts = append(parts, who+": "+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// engineWorkers bounds how many requests dsrlab has in flight at the
// container engine at once. The engine serialises most of the work anyway,
// and Docker 20.10 was seen to deadlock under some 70 concurrent removals.
const engineWorkers = 8

// parallel runs fn(0) ... fn(n-1) on at most workers goroutines and waits
// for all of them.
func parallel(n, workers int, fn func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, workers) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
