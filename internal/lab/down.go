package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/dsrlab/dsrlab/internal/runtime"
)

// Down removes every container labelled as belonging to the lab, running or
// not. Nothing else needs removing: veths and XDP programs live only in the
// containers' network namespaces and vanish with them. Down of a lab that is
// not up is not an error.
func Down(ctx context.Context, rt runtime.Runtime, name string, out io.Writer) ([]string, error) {
	if err := rt.Ping(ctx); err != nil {
		return nil, err
	}
	list, err := rt.List(ctx, map[string]string{LabelLab: name})
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		fmt.Fprintf(out, "Lab %q: nothing to remove\n", name)
		return nil, nil
	}
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	for i, c := range list {
		wg.Go(func() { errs[i] = rt.Remove(ctx, c.ID) })
	}
	wg.Wait()
	var removed []string
	for i, c := range list {
		if errs[i] == nil {
			removed = append(removed, c.Name)
			fmt.Fprintf(out, "  removed %s\n", c.Name)
		}
	}
	return removed, errors.Join(errs...)
}
