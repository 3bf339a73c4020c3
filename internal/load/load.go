// Package load drives connections through a VIP and accounts for every one:
// short connections (connect, one line, answer, close) at a bounded
// concurrency, and long connections that keep exchanging lines for the whole
// run. It runs inside a client container (`dsrlab load`), so its sockets
// live in the client's namespace like any user program's, and it counts
// which real answered each connection from the echo service's prefix.
package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/dsrlab/dsrlab/internal/echo"
)

// Config is one load run.
type Config struct {
	Target      string        // VIP:port
	Short       int           // short connections to make
	Concurrency int           // short connections in flight at once
	Long        int           // long connections held for the whole run
	Interval    time.Duration // between lines on a long connection
	Timeout     time.Duration // per dial and per answer
	// Duration holds the long connections for at least this long, even
	// when the short ones are done sooner (a failover rehearsal: the long
	// connections are what must survive).
	Duration time.Duration
}

// Result counts outcomes; a run passes when nothing failed.
type Result struct {
	Short       int            `json:"short"`
	ShortFailed int            `json:"short_failed"`
	Long        int            `json:"long"`
	LongLines   int            `json:"long_lines"`
	LongFailed  int            `json:"long_failed"`
	PerReal     map[string]int `json:"per_real"`   // short connections answered, by real
	LongReals   []string       `json:"long_reals"` // the real each long connection stayed on
	// LongMaxStall is the longest wait of any long connection between
	// two answers (beyond its interval): how long a failure held traffic
	// up. LongStalled counts the long connections that waited over a
	// second at least once.
	LongMaxStall time.Duration `json:"long_max_stall_ns"`
	LongStalled  int           `json:"long_stalled"`
	Elapsed     time.Duration  `json:"elapsed_ns"`
	ConnsPerSec float64        `json:"short_conns_per_sec"`
	Errors      []string       `json:"errors,omitempty"` // the first few failures
}

// Failed reports whether any connection or line failed.
func (r *Result) Failed() bool { return r.ShortFailed > 0 || r.LongFailed > 0 }

const maxErrors = 10

// stalledAfter is a wait for an answer no healthy path takes.
const stalledAfter = time.Second

type tally struct {
	mu sync.Mutex
	r  *Result
}

func (t *tally) fail(short bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if short {
		t.r.ShortFailed++
	} else {
		t.r.LongFailed++
	}
	if len(t.r.Errors) < maxErrors {
		t.r.Errors = append(t.r.Errors, err.Error())
	}
}

// Run makes cfg.Short short connections while cfg.Long long ones stay up;
// the long ones end when the short ones are done or ctx ends.
func Run(ctx context.Context, cfg Config) *Result {
	res := &Result{PerReal: map[string]int{}}
	t := &tally{r: res}
	start := time.Now()

	longCtx, stopLong := context.WithCancel(ctx)
	var longWG sync.WaitGroup
	res.LongReals = make([]string, cfg.Long)
	for i := range cfg.Long {
		longWG.Go(func() { t.long(longCtx, cfg, i) })
	}

	jobs := make(chan struct{})
	var shortWG sync.WaitGroup
	shortStart := time.Now()
	for range max(cfg.Concurrency, 1) {
		shortWG.Go(func() {
			for range jobs {
				real, err := shortConn(cfg)
				t.mu.Lock()
				res.Short++
				t.mu.Unlock()
				if err != nil {
					t.fail(true, err)
					continue
				}
				t.mu.Lock()
				res.PerReal[real]++
				t.mu.Unlock()
			}
		})
	}
	holdUntil := time.After(cfg.Duration)
feed:
	for range cfg.Short {
		select {
		case jobs <- struct{}{}:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	shortWG.Wait()
	if secs := time.Since(shortStart).Seconds(); secs > 0 {
		res.ConnsPerSec = float64(res.Short) / secs
	}
	select {
	case <-holdUntil:
	case <-ctx.Done():
	}
	stopLong()
	longWG.Wait()
	res.Elapsed = time.Since(start)
	return res
}

// exchange sends one line and reads its answer, returning the real named in
// it. The service may have read the line in pieces and headed each piece;
// the answer still ends at the line's newline, as headers hold none.
func exchange(c net.Conn, r *bufio.Reader, line string, timeout time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, line); err != nil {
		return "", fmt.Errorf("send: %w", err)
	}
	answer, err := r.ReadBytes('\n')
	if err != nil {
		return "", fmt.Errorf("answer: %w", err)
	}
	a, err := echo.Parse(answer)
	if err != nil {
		return "", err
	}
	if string(a.Payload) != line {
		return "", fmt.Errorf("%s echoed %q, want %q", a.Real, a.Payload, line)
	}
	return a.Real, nil
}

func shortConn(cfg Config) (string, error) {
	c, err := net.DialTimeout("tcp", cfg.Target, cfg.Timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return exchange(c, bufio.NewReader(c), "short\n", cfg.Timeout)
}

// long keeps one connection busy; every line must come back from the same
// real the first one did, or the flow was moved mid-connection.
func (t *tally) long(ctx context.Context, cfg Config, i int) {
	c, err := net.DialTimeout("tcp", cfg.Target, cfg.Timeout)
	t.mu.Lock()
	t.r.Long++
	t.mu.Unlock()
	if err != nil {
		t.fail(false, err)
		return
	}
	defer c.Close()
	r := bufio.NewReader(c)
	first := ""
	var maxStall time.Duration
	defer func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.r.LongMaxStall = max(t.r.LongMaxStall, maxStall)
		if maxStall > stalledAfter {
			t.r.LongStalled++
		}
	}()
	for {
		sent := time.Now()
		real, err := exchange(c, r, "long\n", cfg.Timeout)
		maxStall = max(maxStall, time.Since(sent))
		if err != nil {
			t.fail(false, fmt.Errorf("long connection %d: %w", i, err))
			return
		}
		if first == "" {
			first = real
			t.mu.Lock()
			t.r.LongReals[i] = real
			t.mu.Unlock()
		} else if real != first {
			t.fail(false, fmt.Errorf("long connection %d moved from %s to %s", i, first, real))
			return
		}
		t.mu.Lock()
		t.r.LongLines++
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(cfg.Interval):
		}
	}
}

// Summary is a one-line human account of a result.
func (r *Result) Summary() string {
	reals := make([]string, 0, len(r.PerReal))
	for real, n := range r.PerReal {
		reals = append(reals, fmt.Sprintf("%s=%d", real, n))
	}
	sort.Strings(reals)
	return fmt.Sprintf("short %d (failed %d, %.0f conn/s) reals %v; long %d (lines %d, failed %d, stalled over %v %d, longest wait %v); %v",
		r.Short, r.ShortFailed, r.ConnsPerSec, reals, r.Long, r.LongLines, r.LongFailed, stalledAfter, r.LongStalled,
		r.LongMaxStall.Round(time.Millisecond), r.Elapsed.Round(time.Millisecond))
}
