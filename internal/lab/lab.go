// Package lab turns a resolved topology into running containers, links and
// XDP programs (Up), removes everything a lab owns (Down), and reads a
// running lab back from Docker and the kernel (Inspect, Verify). It owns the
// order of the steps, rollback on failure, and the progress a user sees.
package lab

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Labels put on every container of a lab. Down finds a lab by these alone,
// so it works when the topology file has changed or is gone.
const (
	LabelLab      = "dsrlab.lab"
	LabelNode     = "dsrlab.node"
	LabelKind     = "dsrlab.kind"
	LabelTopology = "dsrlab.topology"
)

// Summary is what Up reports at the end.
type Summary struct {
	Lab        string            `json:"lab"`
	Containers []string          `json:"containers"`
	Links      int               `json:"links"`
	VIPs       []string          `json:"vips"`
	XDP        map[string]string `json:"xdp"`   // katran node -> "native" / "generic"
	NAT        map[string]string `json:"nat"`   // katran node -> NAT services
	Decap      map[string]string `json:"decap"` // real node -> how it decapsulates
	Changes    int               `json:"changes"`
	Elapsed    time.Duration     `json:"elapsed_ns"`
}

// Reporter shows progress as it happens.
type Reporter interface {
	// Step reports a finished step with its duration; err is nil on success.
	Step(name string, took time.Duration, detail string, err error)
	// Detail reports one action inside a step (shown when verbose).
	Detail(step, msg string)
	// Note reports something the user should know whatever the verbosity:
	// a fallback taken, a rollback.
	Note(msg string)
	// Progress reports how far a long step is (containers 23 of 67), so a
	// user sees it move; done == total ends it.
	Progress(step string, done, total int)
}

// Grouped prints node -> value pairs, grouping the nodes that share a value
// so that a lab of 64 reals prints one line, not 64.
func Grouped(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	byValue := map[string][]string{}
	for node, v := range m {
		byValue[v] = append(byValue[v], node)
	}
	parts := make([]string, 0, len(byValue))
	for v, nodes := range byValue {
		sort.Strings(nodes)
		who := strings.Join(nodes, ", ")
		if len(nodes) > 3 {
			who = fmt.Sprintf("%d nodes (%s ... %s)", len(nodes), nodes[0], nodes[len(nodes)-1])
		}
		parts = append(parts, who+": "+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// engineWorkers bounds how many requests dsrlab has in flight at the
// container engine at once. The engine serialises most of the work anyway,
// and Docker 20.10 was seen to deadlock under some 70 concurrent removals.
const engineWorkers = 8

// parallel runs fn(0) ... fn(n-1) on at most workers goroutines and waits
// for all of them.
func parallel(n, workers int, fn func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, workers) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
