package lab

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dsrlab/dsrlab/internal/health"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// eventsPoll is how often a follower looks for new lines in the events
// file.
const eventsPoll = 200 * time.Millisecond

// Events gives emit what happened in a lab from since on, in time order:
// the controllers' health events and the engines' container events, from
// every host in rts. With follow it goes on with each new event as it
// happens, until ctx ends.
func Events(ctx context.Context, rts runtime.Set, name string, since time.Time, follow bool, emit func(health.Event) error) error {
	if err := topology.ValidLabName(name); err != nil {
		return err
	}
	now := time.Now()
	past, offset, err := health.ReadEvents(labDir(name), since, 0)
	if err != nil {
		return err
	}
	// A host whose agent does not answer costs its own events only: the
	// others' are shown, and the error after them.
	remote := remoteControllers(name)
	var unread []error
	for _, rc := range remote {
		evs, err := rc.read(ctx, rts, since)
		unread = append(unread, err)
		past = append(past, evs...)
	}
	for _, h := range slices.Sorted(maps.Keys(rts)) {
		evs, errc := rts[h].Events(ctx, since, now, map[string]string{LabelLab: name})
		for e := range evs {
			if !ownExec(e) {
				past = append(past, containerEvent(name, h, e))
			}
		}
		if err := streamErr(errc); err != nil {
			return fmt.Errorf("host %s: %w", h, err)
		}
	}
	slices.SortStableFunc(past, func(a, b health.Event) int { return a.Time.Compare(b.Time) })
	for _, e := range past {
		if err := emit(e); err != nil {
			return err
		}
	}
	if !follow {
		return errors.Join(unread...)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	live := make(chan health.Event)
	failed := make(chan error, len(rts))
	for h, rt := range rts {
		evs, errc := rt.Events(ctx, now, time.Time{}, map[string]string{LabelLab: name})
		go func() {
			for e := range evs {
				if ownExec(e) {
					continue
				}
				select {
				case live <- containerEvent(name, h, e):
				case <-ctx.Done():
					return
				}
			}
			if err := streamErr(errc); err != nil {
				failed <- fmt.Errorf("host %s: %w", h, err)
			}
		}()
	}
	tick := time.NewTicker(eventsPoll)
	defer tick.Stop()
	remoteTick := time.NewTicker(remoteEventsPoll)
	defer remoteTick.Stop()
	for {
		var evs []health.Event
		select {
		case <-ctx.Done():
			return nil
		case err := <-failed:
			return err
		case e := <-live:
			evs = []health.Event{e}
		case <-tick.C:
			evs, offset, err = health.ReadEvents(labDir(name), time.Time{}, offset)
		case <-remoteTick.C:
			for _, rc := range remote {
				// An agent the engine is restarting answers again in a
				// moment, and goes on from its offset; the engine's
				// events say it died.
				more, _ := rc.read(ctx, rts, time.Time{})
				evs = append(evs, more...)
			}
		}
		if err != nil {
			return err
		}
		for _, e := range evs {
			if err := emit(e); err != nil {
				return err
			}
		}
	}
}

// remoteEventsPoll is how often a follower asks the agents of other hosts
// for their controllers' new events: each ask starts a process there.
const remoteEventsPoll = time.Second

// remoteController is where the events of another host's controller are
// read from, and how far they have been.
type remoteController struct {
	topo   *topology.Topology
	host   string
	offset int64
}

// remoteControllers are the controllers of the recorded lab's other
// hosts whose katrans check reals.
func remoteControllers(name string) []*remoteController {
	topo, err := LoadState(name)
	if err != nil {
		return nil // a lab without a record has no agents to ask
	}
	var out []*remoteController
	for _, h := range HostsInUse(topo) {
		if h != topology.LocalHost && checksOn(topo, h) {
			out = append(out, &remoteController{topo: topo, host: h})
		}
	}
	return out
}

// read returns the controller's events from since on that it has not
// returned yet.
func (rc *remoteController) read(ctx context.Context, rts runtime.Set, since time.Time) ([]health.Event, error) {
	if rts[rc.host] == nil {
		return nil, nil // not an engine this command was given
	}
	res, err := agentCall(ctx, rts, rc.topo, rc.host, AgentRequest{Phase: phaseEvents, Since: since, EventsOffset: rc.offset})
	if err != nil {
		return nil, err
	}
	rc.offset = res.EventsOffset
	return res.Events, nil
}

// streamErr is why an engine's event stream ended, once it has: nil if
// it ended without an error (its until, or ctx). The stream sends its
// error before it closes its events.
func streamErr(errc <-chan error) error {
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// ownExec tells an exec of dsrlab's own in its agent or controller (every
// command that reads another host starts one): noise in a lab's events.
func ownExec(e runtime.Event) bool {
	return e.Labels[LabelRole] != "" && strings.HasPrefix(e.Action, "exec_")
}

func containerEvent(lab, host string, e runtime.Event) health.Event {
	return health.Event{Time: e.Time, Type: "container", Lab: lab, Container: e.Container, Action: e.Action, Host: host, Result: role(e.Labels)}
}

// role says what a container is to the lab: a node, or dsrlab's own.
func role(labels map[string]string) string {
	if r := labels[LabelRole]; r != "" {
		return "dsrlab " + r
	}
	if n := labels[LabelNode]; n != "" {
		return "node " + n
	}
	return ""
}
