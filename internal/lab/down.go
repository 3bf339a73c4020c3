package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// Down removes every container labelled as belonging to the lab, running or
// not, and the lab's recorded state. Nothing else needs removing: veths and
// XDP programs live only in the containers' network namespaces and vanish
// with them. Down of a lab that is not up is not an error.
func Down(ctx context.Context, rt runtime.Runtime, name string, rep Reporter) (removed []string, err error) {
	start := time.Now()
	defer func() {
		rep.Step("down", time.Since(start), fmt.Sprintf("%d containers removed", len(removed)), err)
	}()
	// The name becomes a path under the state directory.
	if err := topology.ValidLabName(name); err != nil {
		return nil, err
	}
	if err := rt.Ping(ctx); err != nil {
		return nil, err
	}
	list, err := rt.List(ctx, map[string]string{LabelLab: name})
	if err != nil {
		return nil, err
	}
	errs := make([]error, len(list))
	parallel(len(list), engineWorkers, func(i int) { errs[i] = rt.Remove(ctx, list[i].ID) })
	for i, c := range list {
		if errs[i] == nil {
			unnameNamespace(c.Name)
			removed = append(removed, c.Name)
			rep.Detail("down", "removed "+c.Name)
		}
	}
	if err := errors.Join(errs...); err != nil {
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
	if len(list) == 0 && statErr != nil {
		rep.Note(fmt.Sprintf("Lab %q: nothing to remove", name))
	}
	return removed, nil
}
