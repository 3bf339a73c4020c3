package health

import (
	"errors"
	"slices"
	"testing"
	"time"
)

var (
	t0      = time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	policy  = Policy{Interval: time.Second, Fall: 3, Rise: 2}
	k1      = Key{VIP: "192.168.10.1:50007/tcp", Katran: "katran", Real: "real1"}
	k2      = Key{VIP: "192.168.10.1:50007/tcp", Katran: "katran", Real: "real2"}
	refused = errors.New("connection refused")
)

func TestFallAndRise(t *testing.T) {
	s := NewScheduler(nil)
	s.SetTargets(t0, map[Key]Policy{k1: policy})
	// One result per interval; the status after each.
	steps := []struct {
		err  error
		want Status
	}{
		{nil, Unchecked}, {nil, Up}, // rise 2
		{refused, Up}, {refused, Up}, {nil, Up}, // a success resets the failures
		{refused, Up}, {refused, Up}, {refused, Down}, // fall 3
		{refused, Down}, {nil, Down}, {refused, Down}, // a failure resets the successes
		{nil, Down}, {nil, Up},
	}
	now := t0
	transitions := 0
	for i, st := range steps {
		due := s.Due(now)
		if !slices.Equal(due, []Key{k1}) {
			t.Fatalf("step %d: due %v, want [k1]", i, due)
		}
		if tr := s.Record(k1, now, time.Millisecond, st.err); tr != nil {
			transitions++
			if tr.To != st.want || tr.At != now {
				t.Errorf("step %d: transition %+v, want to %s at %v", i, tr, st.want, now)
			}
		}
		if got := s.Status(k1); got != st.want {
			t.Errorf("step %d: status %s, want %s", i, got, st.want)
		}
		if due := s.Due(now.Add(policy.Interval - time.Millisecond)); len(due) != 0 {
			t.Errorf("step %d: %v due before the interval passed", i, due)
		}
		now = now.Add(policy.Interval)
	}
	r := s.Reals()[0]
	if transitions != 3 || r.Transitions != 3 || r.LastResult != "ok" || r.Since != now.Add(-policy.Interval) {
		t.Errorf("after the run: %d transitions seen, recorded %+v", transitions, r)
	}
}

// A timeout is a failure like any other: the caller records the error
// its deadline gave.
func TestTimeoutIsAFailure(t *testing.T) {
	s := NewScheduler(nil)
	s.SetTargets(t0, map[Key]Policy{k1: {Interval: time.Second, Fall: 1, Rise: 1}})
	s.Due(t0)
	tr := s.Record(k1, t0.Add(500*time.Millisecond), 500*time.Millisecond, errors.New("i/o timeout"))
	if tr == nil || tr.To != Down || tr.Result != "i/o timeout" {
		t.Errorf("transition %+v, want down with the timeout as result", tr)
	}
	if r := s.Reals()[0]; r.Latency != 500*time.Millisecond || r.LastCheck != t0.Add(500*time.Millisecond) {
		t.Errorf("recorded %+v", r)
	}
}

// Each key runs on its own interval; targets come and go; the recorded
// health of a restarted controller is kept and checked again at once.
func TestTargetsAndRestart(t *testing.T) {
	s := NewScheduler(nil)
	fast := Policy{Interval: 100 * time.Millisecond, Fall: 1, Rise: 1}
	s.SetTargets(t0, map[Key]Policy{k1: policy, k2: fast})
	if due := s.Due(t0); !slices.Equal(due, []Key{k1, k2}) {
		t.Fatalf("due at start %v", due)
	}
	if next := s.Next(); next != t0.Add(100*time.Millisecond) {
		t.Errorf("next %v, want t0+100ms", next)
	}
	s.Record(k2, t0, 0, refused)
	if due := s.Due(t0.Add(100 * time.Millisecond)); !slices.Equal(due, []Key{k2}) {
		t.Errorf("due at t0+100ms %v, want [k2]", due)
	}

	restarted := NewScheduler(s.Reals())
	restarted.SetTargets(t0.Add(time.Minute), map[Key]Policy{k1: policy, k2: fast})
	if restarted.Status(k2) != Down {
		t.Errorf("restarted: k2 %s, want the recorded down", restarted.Status(k2))
	}
	if due := restarted.Due(t0.Add(time.Minute)); len(due) != 2 {
		t.Errorf("restarted: due %v, want both at once", due)
	}

	restarted.SetTargets(t0.Add(time.Minute), map[Key]Policy{k1: policy})
	if got := restarted.Reals(); len(got) != 1 || got[0].Key != k1 || restarted.Status(k2) != Unchecked {
		t.Errorf("after k2 left: %+v", got)
	}
	if tr := restarted.Record(k2, t0.Add(time.Minute), 0, nil); tr != nil {
		t.Errorf("a late result of a removed key made %+v", tr)
	}
}

func TestEffectiveWeights(t *testing.T) {
	for _, tc := range []struct {
		name     string
		reals    []Weighted
		want     []uint32
		failOpen bool
	}{
		{"all up", []Weighted{{"a", 1, Up}, {"b", 2, Up}}, []uint32{1, 2}, false},
		{"unchecked keep their weight", []Weighted{{"a", 1, Unchecked}, {"b", 2, Up}}, []uint32{1, 2}, false},
		{"one down", []Weighted{{"a", 1, Down}, {"b", 2, Up}}, []uint32{0, 2}, false},
		{"operator drain of an up real stays", []Weighted{{"a", 0, Up}, {"b", 2, Up}}, []uint32{0, 2}, false},
		{"operator drain stays when the rest fails", []Weighted{{"a", 0, Up}, {"b", 2, Down}, {"c", 1, Down}}, []uint32{0, 2, 1}, true},
		{"every real down: fail open", []Weighted{{"a", 1, Down}, {"b", 2, Down}}, []uint32{1, 2}, true},
		{"all drained by the operator", []Weighted{{"a", 0, Down}}, []uint32{0}, false},
	} {
		got, failOpen := Effective(tc.reals)
		if !slices.Equal(got, tc.want) || failOpen != tc.failOpen {
			t.Errorf("%s: %v fail-open %v, want %v %v", tc.name, got, failOpen, tc.want, tc.failOpen)
		}
	}
}
