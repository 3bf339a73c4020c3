package health

import (
	"sort"
	"time"
)

// Status is a real's health as one katran sees it.
type Status string

const (
	// Unchecked: no verdict yet (fewer than fall failures or rise
	// successes since the check began), or the VIP has no checks. An
	// unchecked real keeps its weight.
	Unchecked Status = "unchecked"
	Up        Status = "up"
	Down      Status = "down"
)

// Key names one check: a katran's view of one real of one VIP.
type Key struct {
	VIP    string `json:"vip"` // as topology.VIP.String prints it
	Katran string `json:"katran"`
	Real   string `json:"real"`
}

// Real is the health of one Key, everything the controller knows about it:
// it is written to health.json whole, so a restarted controller goes on
// where the last one stopped.
type Real struct {
	Key
	Status Status    `json:"status"`
	Since  time.Time `json:"since"`
	// Last is the last check's time, result ("ok" or the error) and
	// latency.
	LastCheck   time.Time     `json:"last_check,omitzero"`
	LastResult  string        `json:"last_result,omitempty"`
	Latency     time.Duration `json:"latency_ns,omitempty"`
	Transitions int           `json:"transitions"`
	// Failures and Successes count the current run of each; one resets
	// the other.
	Failures  int `json:"failures"`
	Successes int `json:"successes"`
}

// Transition is a change of a real's Status.
type Transition struct {
	Key
	From, To Status
	At       time.Time
	Result   string
}

// Policy is the part of a VIP's health check the scheduler applies.
type Policy struct {
	Interval   time.Duration
	Fall, Rise int
}

// Scheduler decides when each check runs and what its results mean. It
// does no I/O and reads no clock: the caller passes the time, so it is
// tested on a fake clock.
type Scheduler struct {
	reals  map[Key]*Real
	policy map[Key]Policy
	next   map[Key]time.Time
}

// NewScheduler starts from the health recorded before (nil: none).
func NewScheduler(recorded []Real) *Scheduler {
	s := &Scheduler{reals: map[Key]*Real{}, policy: map[Key]Policy{}, next: map[Key]time.Time{}}
	for _, r := range recorded {
		s.reals[r.Key] = &r
	}
	return s
}

// SetTargets makes the scheduler check exactly keys, each with its policy.
// A key new to it starts unchecked and is due at once; one that goes
// keeps nothing (a real removed and added again starts afresh); a
// recorded one keeps its health and is due at once (a restarted
// controller checks again before it trusts anything newer).
func (s *Scheduler) SetTargets(now time.Time, policies map[Key]Policy) {
	for k := range s.reals {
		if _, ok := policies[k]; !ok {
			delete(s.reals, k)
			delete(s.next, k)
		}
	}
	for k, p := range policies {
		if s.reals[k] == nil {
			s.reals[k] = &Real{Key: k, Status: Unchecked, Since: now}
		}
		if _, ok := s.next[k]; !ok {
			s.next[k] = now
		}
		s.policy[k] = p
	}
	for k := range s.policy {
		if _, ok := policies[k]; !ok {
			delete(s.policy, k)
		}
	}
}

// Due returns the checks to run at now, sorted, and schedules each one's
// next run an interval later: a check that takes its whole timeout (which
// is shorter than the interval) is done before the next is due.
func (s *Scheduler) Due(now time.Time) []Key {
	var due []Key
	for k, at := range s.next {
		if !at.After(now) {
			due = append(due, k)
			s.next[k] = now.Add(s.policy[k].Interval)
		}
	}
	sortKeys(due)
	return due
}

// Next is when the next check is due; zero with no targets.
func (s *Scheduler) Next() time.Time {
	var next time.Time
	for _, at := range s.next {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}

// Record takes the result of k's check, finished at now after latency
// (err nil: passed), and returns the transition it caused, if any. A
// result for a key no longer checked is ignored.
func (s *Scheduler) Record(k Key, now time.Time, latency time.Duration, err error) *Transition {
	r, p := s.reals[k], s.policy[k]
	if r == nil {
		return nil
	}
	r.LastCheck, r.Latency, r.LastResult = now, latency, "ok"
	to := r.Status
	if err != nil {
		r.LastResult = err.Error()
		r.Failures++
		r.Successes = 0
		if r.Failures >= p.Fall {
			to = Down
		}
	} else {
		r.Successes++
		r.Failures = 0
		if r.Successes >= p.Rise {
			to = Up
		}
	}
	if to == r.Status {
		return nil
	}
	t := &Transition{Key: k, From: r.Status, To: to, At: now, Result: r.LastResult}
	r.Status, r.Since = to, now
	r.Transitions++
	return t
}

// Status is k's health; Unchecked for a key not checked.
func (s *Scheduler) Status(k Key) Status {
	if r := s.reals[k]; r != nil {
		return r.Status
	}
	return Unchecked
}

// Reals returns every key's health, sorted by key.
func (s *Scheduler) Reals() []Real {
	out := make([]Real, 0, len(s.reals))
	for _, r := range s.reals {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i].Key, out[j].Key) })
	return out
}

func sortKeys(ks []Key) { sort.Slice(ks, func(i, j int) bool { return less(ks[i], ks[j]) }) }

func less(a, b Key) bool {
	if a.VIP != b.VIP {
		return a.VIP < b.VIP
	}
	if a.Katran != b.Katran {
		return a.Katran < b.Katran
	}
	return a.Real < b.Real
}

// Weighted is a real of a VIP with the weight the operator gave it (in the
// recorded topology) and its health on one katran.
type Weighted struct {
	Real   string
	Weight uint32
	Status Status
}

// Effective returns the weights one katran should give a VIP's reals, in
// order, and whether it fails open. A down real gets 0; an operator's 0
// stays 0 whatever the health. If every real the operator left in (weight
// above 0) is down, none is taken out: a VIP with no real at all would
// drop every new flow, while a check that fails everywhere more likely
// says the checks are broken than that every real is.
func Effective(reals []Weighted) (weights []uint32, failOpen bool) {
	weights = make([]uint32, len(reals))
	live, in := 0, 0
	for i, r := range reals {
		weights[i] = r.Weight
		if r.Weight > 0 {
			in++
			if r.Status != Down {
				live++
			}
		}
	}
	if in > 0 && live == 0 {
		return weights, true
	}
	for i, r := range reals {
		if r.Status == Down {
			weights[i] = 0
		}
	}
	return weights, false
}
