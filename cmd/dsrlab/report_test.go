//go:build linux

package main

import (
	"strings"
	"testing"
	"time"
)

// On a terminal, progress is one line rewritten in place, cleared before
// the next step's line.
func TestProgressOnATerminalUpdatesOneLine(t *testing.T) {
	var out strings.Builder
	r := &textReporter{w: &out, tty: true}
	r.Progress("containers", 1, 3)
	r.Progress("containers", 2, 3)
	r.Step("containers", time.Second, "3 started", nil)
	want := "\r\033[K  containers  1/3" + "\r\033[K  containers  2/3" + "\r\033[K" + "  containers  3 started (1s)\n"
	if out.String() != want {
		t.Errorf("terminal output %q, want %q", out.String(), want)
	}
}

// Elsewhere (a CI log, a pipe), a long step prints a plain line now and
// then, and never control characters.
func TestProgressInALogIsPlainAndSparse(t *testing.T) {
	var out strings.Builder
	r := &textReporter{w: &out}
	for i := 1; i <= 50; i++ {
		r.Progress("containers", i, 67)
	}
	r.Step("containers", time.Second, "67 started", nil)
	if strings.ContainsAny(out.String(), "\r\033") {
		t.Errorf("control characters in a log: %q", out.String())
	}
	if lines := strings.Count(out.String(), "\n"); lines != 2 {
		t.Errorf("%d lines for 50 quick progress reports and a step, want 2:\n%s", lines, out.String())
	}
}
