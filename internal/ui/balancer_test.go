//go:build linux

package ui

import (
	"slices"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/health"
	"github.com/dsrlab/dsrlab/internal/lab"
)

func TestHealthSectionShowsTheBalancersOwnView(t *testing.T) {
	if s := healthSection(&balancerInput{report: &lab.NodeReport{}}); s != nil {
		t.Errorf("a balancer without checks got a health section: %+v", s)
	}
	since := time.Date(2026, 12, 7, 19, 30, 0, 0, time.UTC)
	report := &lab.NodeReport{Health: []health.Real{
		{Key: health.Key{VIP: "192.168.10.1:50007/tcp", Katran: "katran", Real: "real2"}, Status: health.Down, Since: since,
			LastResult: "connection refused", Latency: 300 * time.Microsecond, Transitions: 1},
	}}
	s := healthSection(&balancerInput{report: report})
	if s == nil || len(s.Rows) != 1 {
		t.Fatalf("health section = %+v, want one row", s)
	}
	want := []string{"192.168.10.1:50007/tcp", "real2", string(health.Down), "19:30:00", "connection refused", "300µs", "1"}
	if !slices.Equal(s.Rows[0], want) {
		t.Errorf("row = %q, want %q", s.Rows[0], want)
	}
}

// The live log says when a real's health changes on a katran (on any
// host: stats brings every host's), not when it is first seen.
func TestHealthChangesAreLogged(t *testing.T) {
	k1 := health.Key{VIP: "192.168.10.1:50007/tcp", Katran: "katran", Real: "real2"}
	k2 := health.Key{VIP: "192.168.10.1:50007/tcp", Katran: "katran2", Real: "real2"}
	reading := func(s1, s2 health.Status) []lab.BalancerStats {
		return []lab.BalancerStats{
			{Node: "katran", Health: []health.Real{{Key: k1, Status: s1, LastResult: "ok"}}},
			{Node: "katran2", Health: []health.Real{{Key: k2, Status: s2, LastResult: "connection refused"}}},
		}
	}
	seen := map[health.Key]health.Status{}
	if got := healthChanges(seen, reading(health.Up, health.Up)); len(got) != 0 {
		t.Errorf("first reading logged %q", got)
	}
	got := healthChanges(seen, reading(health.Up, health.Down))
	want := []string{"health: real2 on katran2 (192.168.10.1:50007/tcp): up → down (connection refused)"}
	if !slices.Equal(got, want) {
		t.Errorf("logged %q, want %q", got, want)
	}
	if got := healthChanges(seen, reading(health.Up, health.Down)); len(got) != 0 {
		t.Errorf("an unchanged reading logged %q", got)
	}
}
