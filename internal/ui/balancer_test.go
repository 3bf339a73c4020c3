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
