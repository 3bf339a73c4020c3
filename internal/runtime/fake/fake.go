// Package fake is a container runtime without containers: each "container"
// is a plain network namespace held by this process, so the orchestrator's
// steps, rollback and reconciliation run against real veths, addresses,
// routes and XDP programs in seconds, with no engine reachable.
//
// Commands are not run in an image: Exec runs them on the host's file
// system inside the container's namespace, and long-running processes
// (a node's cmd, ExecDetached) go to the Process hook, which tests use to
// start services in-process.
package fake

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
)

var _ runtime.Runtime = (*Runtime)(nil)

// Process starts a container's long-running process (its cmd, or an
// ExecDetached command) in its namespace. It returns once the process is
// started; ctx ends when the container is removed or stopped, and ns is
// closed then too: a process that goes on in the background works on a
// clone of it.
type Process func(ctx context.Context, ns *netconf.Namespace, cmd []string) error

// Runtime keeps containers in memory. The zero value is not usable: use New.
type Runtime struct {
	// Process, when set, starts containers' processes; nil ignores them.
	Process Process
	// FailRun, when set, is asked before each container is created; an
	// error from it fails that Run, as an engine's refusal would.
	FailRun func(name string) error

	mu         sync.Mutex
	containers map[string]*container // by ID
	// events is what happened to containers, in order; changed is
	// closed and replaced when one is added, waking Events' readers.
	events  []runtime.Event
	changed chan struct{}
	nextID  atomic.Int64
	pingErr error
}

type container struct {
	runtime.Container
	spec   runtime.ContainerSpec
	ns     *netconf.Namespace // nil unless running
	procs  context.Context    // the processes' lifetime: until stopped
	cancel context.CancelFunc
}

// New returns an empty runtime.
func New() *Runtime {
	return &Runtime{containers: map[string]*container{}, changed: make(chan struct{})}
}

// SetUnreachable makes Ping fail with err (nil: reachable again), as an
// engine that is not running does.
func (r *Runtime) SetUnreachable(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pingErr = err
}

func (r *Runtime) Ping(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pingErr
}

func (r *Runtime) Run(ctx context.Context, spec runtime.ContainerSpec) (*runtime.Container, error) {
	if r.FailRun != nil {
		if err := r.FailRun(spec.Name); err != nil {
			return nil, fmt.Errorf("create container %s: %w", spec.Name, err)
		}
	}
	r.mu.Lock()
	for _, c := range r.containers {
		if c.Name == spec.Name {
			r.mu.Unlock()
			return nil, fmt.Errorf("create container %s: %w by %s", spec.Name, runtime.ErrNameInUse, c.ID)
		}
	}
	id := "fake" + strconv.FormatInt(r.nextID.Add(1), 10)
	c := &container{
		Container: runtime.Container{ID: id, Name: spec.Name, Image: spec.Image, State: "created", Labels: maps.Clone(spec.Labels)},
		spec:      spec,
	}
	r.containers[id] = c
	r.mu.Unlock()
	if err := r.start(c); err != nil {
		_ = r.Remove(context.WithoutCancel(ctx), id)
		return nil, err
	}
	return r.Inspect(ctx, id)
}

// start gives c a fresh namespace, as a container start does, with the
// spec's sysctls, and starts its process.
func (r *Runtime) start(c *container) error {
	ns, err := netconf.New(c.Name)
	if err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(c.spec.Sysctls)) {
		if err := ns.SetSysctl(k, c.spec.Sysctls[k]); err != nil {
			ns.Close()
			return err
		}
	}
	pctx, cancel := context.WithCancel(context.Background())
	if r.Process != nil && len(c.spec.Cmd) > 0 {
		if err := r.Process(pctx, ns, c.spec.Cmd); err != nil {
			cancel()
			ns.Close()
			return fmt.Errorf("start container %s: %w", c.Name, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c.ns, c.procs, c.cancel, c.State = ns, pctx, cancel, "running"
	r.event(c, "start")
	return nil
}

// event records what happened to c; r.mu is held.
func (r *Runtime) event(c *container, action string) {
	r.events = append(r.events, runtime.Event{Time: time.Now(), Container: c.Name, Action: action, Labels: maps.Clone(c.Labels)})
	close(r.changed)
	r.changed = make(chan struct{})
}

// Events replays the recorded events from since that match labels, then
// follows new ones until ctx ends (or ends at until).
func (r *Runtime) Events(ctx context.Context, since, until time.Time, labels map[string]string) (<-chan runtime.Event, <-chan error) {
	out, errc := make(chan runtime.Event), make(chan error, 1)
	go func() {
		defer close(out)
		next := 0
		for {
			r.mu.Lock()
			batch, changed := slices.Clone(r.events[next:]), r.changed
			next = len(r.events)
			r.mu.Unlock()
			for _, e := range batch {
				if !until.IsZero() && e.Time.After(until) {
					return
				}
				if e.Time.Before(since) || !hasLabels(e.Labels, labels) {
					continue
				}
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
			if !until.IsZero() && !time.Now().Before(until) {
				return
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, errc
}

func (r *Runtime) find(nameOrID string) (*container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.containers[nameOrID]; c != nil {
		return c, nil
	}
	for _, c := range r.containers {
		if c.Name == nameOrID {
			return c, nil
		}
	}
	return nil, fmt.Errorf("container %s: %w", nameOrID, runtime.ErrNotFound)
}

func (r *Runtime) Inspect(_ context.Context, nameOrID string) (*runtime.Container, error) {
	c, err := r.find(nameOrID)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := c.Container
	out.Labels = maps.Clone(c.Labels)
	return &out, nil
}

func (r *Runtime) List(_ context.Context, labels map[string]string) ([]runtime.Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []runtime.Container
	for _, c := range r.containers {
		if hasLabels(c.Labels, labels) {
			out = append(out, c.Container)
		}
	}
	slices.SortFunc(out, func(a, b runtime.Container) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (r *Runtime) Remove(_ context.Context, id string) error {
	c, err := r.find(id)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil
	}
	r.stop(c)
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.containers, c.ID)
	return nil
}

// Stop stops a container as `docker stop` or `docker kill` would: its
// processes end and its network namespace, with every link in it, is gone.
// Processes here have no signals to tell the two apart.
func (r *Runtime) Stop(_ context.Context, nameOrID string, _ bool) error {
	c, err := r.find(nameOrID)
	if err != nil {
		return err
	}
	r.stop(c)
	return nil
}

func (r *Runtime) stop(c *container) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
	}
	if c.ns != nil {
		c.ns.Close()
	}
	if c.State == "running" {
		r.event(c, "die")
	}
	c.ns, c.procs, c.cancel, c.State = nil, nil, nil, "exited"
}

func (r *Runtime) Start(ctx context.Context, id string) (*runtime.Container, error) {
	c, err := r.find(id)
	if err != nil {
		return nil, err
	}
	// Claimed under the lock, so that concurrent Starts make one namespace.
	r.mu.Lock()
	busy := c.Running() || c.State == "starting"
	prev := c.State
	if !busy {
		c.State = "starting"
	}
	r.mu.Unlock()
	if busy {
		return r.Inspect(ctx, id)
	}
	if err := r.start(c); err != nil {
		r.mu.Lock()
		c.State = prev
		r.mu.Unlock()
		return nil, err
	}
	return r.Inspect(ctx, id)
}

func (r *Runtime) Namespace(_ context.Context, id string) (*netconf.Namespace, error) {
	c, err := r.find(id)
	if err != nil {
		return nil, err
	}
	// Cloned under the lock: a concurrent stop closes the handle.
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.ns == nil {
		return nil, fmt.Errorf("container %s is %s; `dsrlab up` starts it", c.Name, c.State)
	}
	return c.ns.Clone()
}

// NamespacePath fails: the fake's namespaces are held by handles only.
func (r *Runtime) NamespacePath(_ context.Context, id string) (string, error) {
	return "", fmt.Errorf("container %s: the fake runtime's namespaces have no path", id)
}

// Exec runs cmd from the host's file system inside the container's
// namespace: the child is forked from a thread that has entered it.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, stdio runtime.ExecIO) (int, error) {
	if len(cmd) == 0 {
		return -1, errors.New("exec: empty command")
	}
	ns, err := r.Namespace(ctx, id)
	if err != nil {
		return -1, err
	}
	defer ns.Close()
	code := -1
	err = ns.Do(func() error {
		c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
		c.Stdin, c.Stdout, c.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
		err := c.Run()
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			code = exit.ExitCode()
			return nil
		case err != nil:
			return fmt.Errorf("exec %q: %w", cmd, err)
		}
		code = 0
		return nil
	})
	return code, err
}

func (r *Runtime) ExecDetached(_ context.Context, id string, cmd []string) error {
	c, err := r.find(id)
	if err != nil {
		return err
	}
	r.mu.Lock()
	ns, procs := c.ns, c.procs
	r.mu.Unlock()
	if ns == nil {
		return fmt.Errorf("exec %q: container %s is not running", cmd, c.Name)
	}
	if r.Process == nil {
		return nil
	}
	return r.Process(procs, ns, cmd)
}

// Image reports every image as present: the fake runs nothing from images.
func (r *Runtime) Image(_ context.Context, ref string) (*runtime.Image, error) {
	return &runtime.Image{ID: "fake:" + ref, Labels: map[string]string{}}, nil
}

// hasLabels tells whether have carries every label of want.
func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
