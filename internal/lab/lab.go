// Package lab turns a resolved topology into running containers, links and
// XDP programs (Up) and removes everything a lab owns (Down). It owns the
// order of the steps, rollback on failure, and the progress a user sees.
package lab

import (
	"fmt"
	"io"
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
	Lab        string
	Containers []string
	Links      int
	VIPs       []string
	XDP        map[string]string // katran node -> "native" / "generic"
	Decap      map[string]string // real node -> "ipip" / "xdp (native)" / ...
	Elapsed    time.Duration
}

// progress prints each step as it completes, with its duration, so a slow
// or failing step is visible where it happens.
type progress struct {
	w io.Writer
}

func (p progress) step(name string, fn func() (string, error)) error {
	start := time.Now()
	detail, err := fn()
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		fmt.Fprintf(p.w, "  %-11s FAILED after %v\n", name, took)
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(p.w, "  %-11s %s (%v)\n", name, detail, took)
	return nil
}

func (p progress) printf(format string, args ...any) {
	fmt.Fprintf(p.w, format, args...)
}
