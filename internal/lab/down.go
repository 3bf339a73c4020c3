package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// Down removes every container labelled as belonging to the lab, running or
// not, on every engine in rts, and the lab's recorded state and pins (of
// users' program arrays; another host's are in its agent's container).
// Nothing else needs removing: veths, VXLAN ends and XDP programs live only
// in the containers' network namespaces and vanish with them. Down of a
// lab that is not up is not an error.
func Down(ctx context.Context, rts runtime.Set, name string, rep Reporter) (removed []string, err error) {
	start := time.Now()
	defer func() {
		rep.Step("down", time.Since(start), fmt.Sprintf("%d containers removed", len(removed)), err)
	}()
	// The name becomes a path under the state directory.
	if err := topology.ValidLabName(name); err != nil {
		return nil, err
	}
	removed, found, err := downOnAll(ctx, rts, name, rep)
	if err == nil {
		// One that cannot be looked at may be there.
		if _, serr := os.Stat(creatingFile(name)); !errors.Is(serr, fs.ErrNotExist) {
			var late []string
			late, err = lateCreates(ctx, rts, name, rep)
			removed, found = append(removed, late...), found+len(late)
		}
	}
	if err != nil {
		// Keep the state: it describes containers that are still there.
		return removed, err
	}
	if topo, err := LoadState(name); err == nil {
		for _, n := range topo.Nodes {
			unnameGone(n.ContainerName)
		}
	}
	_, statErr := os.Stat(stateFile(name))
	if err := removeState(name); err != nil {
		return removed, err
	}
	if found == 0 && statErr != nil {
		rep.Note(fmt.Sprintf("Lab %q: nothing to remove", name))
	}
	return removed, nil
}

// downOnAll removes the lab's containers on every engine; it reports
// those it removed and how many there were.
func downOnAll(ctx context.Context, rts runtime.Set, name string, rep Reporter) (removed []string, found int, err error) {
	var errs []error
	for _, h := range slices.Sorted(maps.Keys(rts)) {
		gone, n, err := downOn(ctx, rts[h], name, rep)
		if err != nil {
			err = fmt.Errorf("host %s: %w", h, err)
		}
		removed, found, errs = append(removed, gone...), found+n, append(errs, err)
	}
	return removed, found, errors.Join(errs...)
}

// lateCreateQuiet is how long down watches the engines for containers of
// an up that died: the engine completes the creates it was sent after the
// process is gone, and on a loaded engine a create takes a second or more.
// lateCreateMax bounds the watch if creates keep coming.
const (
	lateCreateQuiet = 2 * time.Second
	lateCreateMax   = 30 * time.Second
)

// lateCreates removes the lab's containers that appear on the engines
// until none has for lateCreateQuiet, after an up that died with creates
// in flight (its creatingFile is left): a down right after a SIGKILLed up
// left a container the engine created a moment later.
func lateCreates(ctx context.Context, rts runtime.Set, name string, rep Reporter) ([]string, error) {
	rep.Note(fmt.Sprintf("An up of lab %q did not finish: watching the engines until no container of the lab has appeared for %v", name, lateCreateQuiet))
	var removed []string
	end := time.Now().Add(lateCreateMax)
	for quiet := time.Now(); time.Since(quiet) < lateCreateQuiet; {
		if time.Now().After(end) {
			return removed, fmt.Errorf("containers of lab %q kept appearing for %v after an up that did not finish", name, lateCreateMax)
		}
		select {
		case <-ctx.Done():
			return removed, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		gone, found, err := downOnAll(ctx, rts, name, rep)
		removed = append(removed, gone...)
		if err != nil {
			return removed, err
		}
		if found > 0 {
			quiet = time.Now()
		}
	}
	return removed, nil
}

// downOn removes the lab's containers on one engine; it reports those it
// removed and how many there were.
func downOn(ctx context.Context, rt runtime.Runtime, name string, rep Reporter) ([]string, int, error) {
	if err := rt.Ping(ctx); err != nil {
		return nil, 0, err
	}
	list, err := rt.List(ctx, map[string]string{LabelLab: name})
	if err != nil {
		return nil, 0, err
	}
	errs := make([]error, len(list))
	parallel(len(list), engineWorkers, func(i int) { errs[i] = rt.Remove(ctx, list[i].ID) })
	var removed []string
	for i, c := range list {
		if errs[i] == nil {
			unnameNamespace(c.Name)
			removed = append(removed, c.Name)
			rep.Detail("down", "removed "+c.Name)
		}
	}
	return removed, len(list), errors.Join(errs...)
}
