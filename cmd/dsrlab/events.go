//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/health"
	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// newEventsCmd streams what happens in a lab, as containerlab's events
// does: one line per event, JSON lines with --format json, until Ctrl-C.
func newEventsCmd() *cobra.Command {
	var sel labSelector
	var format outputFormat
	var since string
	var follow bool
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Stream what happens in a lab: reals' health transitions, fail open, containers that start and die",
		Long: "events shows the lab's events in time order, from the controller's events file (health\n" +
			"transitions and fail open, see docs/HEALTH.md) and from the container engine of every host\n" +
			"(containers started, died, restarted), then follows new ones until interrupted.\n" +
			"--since takes a duration back from now (10m) or a time (RFC 3339); the default is the last hour.",
		Example: "  dsrlab events --name dsr3\n  dsrlab events --since 5m --follow=false --format json",
		Args:    cobra.NoArgs,
		PreRunE: requireRoot(rootForNamespaces),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := format.check(); err != nil {
				return err
			}
			from, err := parseSince(since, time.Now())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			emit := func(e health.Event) error {
				if format == "json" {
					return json.NewEncoder(w).Encode(e)
				}
				_, err := fmt.Fprintln(w, eventLine(e))
				return err
			}
			return sel.withTopology(cmd.Context(), func(rts runtime.Set, topo *topology.Topology) error {
				return lab.Events(cmd.Context(), rts, topo.Name, from, follow, emit)
			})
		},
	}
	sel.flags(cmd)
	format.register(cmd)
	cmd.Flags().StringVar(&since, "since", "1h", "show events from this long ago (a duration) or this time (RFC 3339)")
	cmd.Flags().BoolVar(&follow, "follow", true, "keep streaming new events until interrupted")
	return cmd
}

func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (10m) or an RFC 3339 time", s)
}

// eventLine is an event as one line of text, timestamp first.
func eventLine(e health.Event) string {
	ts := e.Time.Local().Format("2006-01-02T15:04:05.000Z07:00")
	switch e.Type {
	case "health":
		return fmt.Sprintf("%s health     %s real %s on %s: %s -> %s (%s)", ts, e.VIP, e.Real, e.Katran, e.From, e.To, e.Result)
	case "fail-open", "fail-open-end":
		return fmt.Sprintf("%s %-10s %s on %s: %s", ts, e.Type, e.VIP, e.Katran, e.Result)
	case "container":
		return fmt.Sprintf("%s container  %s %s (%s, host %s)", ts, e.Container, e.Action, e.Result, e.Host)
	}
	return fmt.Sprintf("%s %-10s %s", ts, e.Type, e.Result)
}
