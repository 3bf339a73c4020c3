package lab

import (
	"context"
	"fmt"
	goruntime "runtime"
	"strings"
	"time"
)

// step is one named step of up: it returns what it did, in a few words.
type step struct {
	name string
	fn   func(context.Context) (string, error)
	// until, when set, makes the step run in the background from its
	// place in the list, beside the steps after it, and names the step
	// that needs its work: up waits for it there (see runSteps).
	until string
}

// background is a step running beside the others.
type background struct {
	step
	begin  time.Time
	done   chan struct{}
	took   time.Duration // its own wall time, from start to end
	detail string
	err    error
	beside []string // the steps that started while it ran
	joined bool
	prio   threadPriority
}

// runSteps runs steps in order and reports each as it ends, with its
// wall time. A step with until starts in the background at its place and
// runs beside the steps that follow; before step until starts, up waits
// for it and reports it, with its own wall time (which overlaps theirs,
// so the times reported add up to more than up took), the steps it ran
// beside and how long up waited for it. Its error fails up there. When a
// step fails, what runs in the background is told to stop, and runSteps
// returns only once it has: its loaded objects are the caller's to close.
func (d *deployment) runSteps(ctx context.Context, steps []step) error {
	bctx, stop := context.WithCancel(ctx)
	var running []*background
	defer func() {
		stop()
		for _, b := range running {
			b.wait()
		}
	}()
	for _, s := range steps {
		if s.until != "" {
			running = append(running, d.startBackground(bctx, s))
			continue
		}
		for _, b := range running {
			if b.until == s.name {
				if err := d.join(b); err != nil {
					return err
				}
			}
		}
		for _, b := range running {
			select {
			case <-b.done:
			default:
				b.beside = append(b.beside, s.name)
			}
		}
		begin := time.Now()
		detail, err := d.runStep(ctx, s)
		d.rep.Step(s.name, time.Since(begin), detail, err)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	// A step whose until is not among steps is waited for at the end.
	for _, b := range running {
		if err := d.join(b); err != nil {
			return err
		}
	}
	return nil
}

func (d *deployment) runStep(ctx context.Context, s step) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := d.fault.atStart(s.name); err != nil {
		return "", err
	}
	return s.fn(ctx)
}

func (d *deployment) startBackground(ctx context.Context, s step) *background {
	b := &background{step: s, begin: time.Now(), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		goruntime.LockOSThread()
		// Before done is closed, however the step ends: a wait after
		// that must find no thread ID to set, the thread may be gone.
		defer func() {
			if b.prio.restore() {
				goruntime.UnlockOSThread()
			} // else Go ends the thread with this goroutine
		}()
		b.prio.lower()
		b.detail, b.err = d.runStep(ctx, s)
		b.took = time.Since(b.begin)
	}()
	return b
}

// wait waits for a background step to end, at its normal priority.
func (b *background) wait() {
	b.prio.restore()
	<-b.done
}

// join waits for a background step, once, and reports it.
func (d *deployment) join(b *background) error {
	if b.joined {
		return nil
	}
	b.joined = true
	wait := time.Now()
	b.wait()
	waited := time.Since(wait)
	detail := b.detail
	if b.err == nil {
		if len(b.beside) > 0 {
			detail += "; beside " + besideList(b.beside) + ","
		}
		detail += fmt.Sprintf(" waited for %v", waited.Round(time.Millisecond))
	}
	d.rep.Step(b.name, b.took, detail, b.err)
	if b.err != nil {
		return fmt.Errorf("%s: %w", b.name, b.err)
	}
	return nil
}

func besideList(steps []string) string {
	if len(steps) <= 2 {
		return strings.Join(steps, ", ")
	}
	return steps[0] + " .. " + steps[len(steps)-1]
}
