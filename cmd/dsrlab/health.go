//go:build linux

package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/dsrlab/dsrlab/internal/health"
)

// printHealth shows one katran's view of its reals, as stats and inspect
// print it.
func printHealth(w io.Writer, reals []health.Real) {
	if len(reals) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  health\tVIP\tREAL\tSTATUS\tSINCE\tLAST\tLATENCY\tTRANSITIONS")
	for _, r := range reals {
		fmt.Fprintf(tw, "  \t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.VIP, r.Real, r.Status, r.Since.Local().Format(time.TimeOnly),
			r.LastResult, r.Latency.Round(10*time.Microsecond), r.Transitions)
	}
	tw.Flush()
}
