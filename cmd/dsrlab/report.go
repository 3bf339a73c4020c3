//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/moby/term"

	"github.com/dsrlab/dsrlab/internal/lab"
)

// Progress on a terminal is one line rewritten in place; elsewhere (a CI
// log, a pipe) a plain line at most this often, so a long step shows it is
// alive without flooding the log.
const plainProgressEvery = 2 * time.Second

// textReporter writes one line per step for people; verbose adds one line
// per action inside a step. Write errors are ignored on purpose: a closed
// output (`dsrlab up | head`) must not abort the operation it reports on.
type textReporter struct {
	w       io.Writer
	verbose bool
	tty     bool

	mu       sync.Mutex
	live     bool      // a progress line is on screen, to be overwritten
	lastLine time.Time // of the last plain progress line
}

func newTextReporter(w io.Writer, verbose bool) *textReporter {
	f, ok := w.(*os.File)
	return &textReporter{w: w, verbose: verbose, tty: ok && term.IsTerminal(f.Fd())}
}

// printf clears a live progress line before anything else is written.
func (r *textReporter) printf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live {
		fmt.Fprint(r.w, "\r\033[K")
		r.live = false
	}
	fmt.Fprintf(r.w, format, args...)
}

func (r *textReporter) Step(name string, took time.Duration, detail string, err error) {
	took = took.Round(time.Millisecond)
	if err != nil {
		r.printf("  %-11s FAILED after %v\n", name, took)
		return
	}
	r.printf("  %-11s %s (%v)\n", name, detail, took)
}

func (r *textReporter) Detail(step, msg string) {
	if r.verbose {
		r.printf("  %-11s   %s\n", "", msg)
	}
}

func (r *textReporter) Note(msg string) { r.printf("  %s\n", msg) }

func (r *textReporter) Progress(step string, done, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tty {
		fmt.Fprintf(r.w, "\r\033[K  %-11s %d/%d", step, done, total)
		r.live = true
		return
	}
	if done < total && time.Since(r.lastLine) >= plainProgressEvery {
		fmt.Fprintf(r.w, "  %-11s %d/%d ...\n", step, done, total)
		r.lastLine = time.Now()
	}
}

// jsonReporter writes one JSON object per event, for CI logs; verbose adds
// the actions inside each step. Progress is left out: the step events
// already carry what a log reader needs.
type jsonReporter struct{ l *slog.Logger }

func newJSONReporter(w io.Writer, verbose bool) jsonReporter {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return jsonReporter{slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))}
}

func (r jsonReporter) Step(name string, took time.Duration, detail string, err error) {
	if err != nil {
		r.l.Error("step", "step", name, "took_ms", took.Milliseconds(), "error", err.Error())
		return
	}
	r.l.Info("step", "step", name, "took_ms", took.Milliseconds(), "detail", detail)
}

func (r jsonReporter) Detail(step, msg string) { r.l.Debug("detail", "step", step, "msg", msg) }
func (r jsonReporter) Note(msg string)         { r.l.Warn("note", "msg", msg) }
func (jsonReporter) Progress(string, int, int) {}

// quietReporter shows nothing; errors still come back to the caller.
type quietReporter struct{}

func (quietReporter) Step(string, time.Duration, string, error) {}
func (quietReporter) Detail(string, string)                     {}
func (quietReporter) Note(string)                               {}
func (quietReporter) Progress(string, int, int)                 {}

var _ = []lab.Reporter{(*textReporter)(nil), jsonReporter{}, quietReporter{}}

// writeJSON writes v indented, the output format of every --format json.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
