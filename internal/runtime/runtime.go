// Package runtime is the small container-runtime interface the orchestrator
// needs. The Docker implementation lives in runtime/docker so that nothing
// else in dsrlab imports the Docker SDK; runtime/fake keeps "containers" as
// plain network namespaces, so the orchestrator is tested without an engine.
//
// A runtime owns everything engine-specific, including how a container's
// network namespace is reached: nothing outside it knows about PIDs.
package runtime

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/dsrlab/dsrlab/internal/netconf"
)

// ErrNotFound is returned when a container or image does not exist.
var ErrNotFound = errors.New("not found")

// ErrNameInUse is returned when a container is to be created under a name
// another container has.
var ErrNameInUse = errors.New("name already in use")

// ContainerSpec is what the orchestrator asks for: a container with no
// network of its own (links are wired afterwards) and only named capabilities,
// because privileged containers cannot start on every host.
type ContainerSpec struct {
	Name     string
	Hostname string
	Image    string
	Cmd      []string
	Env      map[string]string
	Labels   map[string]string
	Sysctls  map[string]string
	CapAdd   []string
	// HostNetwork and HostPID run the container in its host's network
	// and PID namespaces: dsrlab's agent on another host, which enters
	// the lab's containers there.
	HostNetwork, HostPID bool
	// Mounts lets the container mount file systems, which AppArmor's
	// docker-default profile (or SELinux's container type) forbids even
	// with CAP_SYS_ADMIN: the agent mounts a bpffs for the program arrays
	// of users' programs.
	Mounts bool
	// Binds are host paths the container sees, as "HOST:CONTAINER" or
	// "HOST:CONTAINER:ro": the lab's state directory for its controller.
	Binds []string
	// RestartPolicy is the engine's: "" (never restart) or
	// "unless-stopped", which brings back a container whose main
	// process crashed (not one stopped on purpose, DESIGN.md pitfall 16).
	RestartPolicy string
}

// Container is the runtime's view of one container.
type Container struct {
	ID      string
	Name    string
	Image   string
	State   string // "running", "exited", ...
	Labels  map[string]string
	Created string
}

// Running tells whether the container's network namespace is there to be
// configured: it exists only while the container runs (or is paused).
func (c *Container) Running() bool { return c.State == "running" || c.State == "paused" }

// Image is a local image.
type Image struct {
	ID     string
	Labels map[string]string
}

// ExecIO connects a command run in a container to the caller. A nil
// Stdin gives the command an empty input.
type ExecIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// TTY gives the command a terminal of Rows x Cols; its output then
	// arrives on Stdout alone, as a terminal's does.
	TTY        bool
	Rows, Cols uint
}

// Runtime is a container engine.
type Runtime interface {
	// Ping fails with a message that says how to start the engine when it is
	// not reachable.
	Ping(ctx context.Context) error
	// Run creates and starts a container and returns it inspected.
	Run(ctx context.Context, spec ContainerSpec) (*Container, error)
	Inspect(ctx context.Context, nameOrID string) (*Container, error)
	// List returns all containers, running or not, that carry every label given.
	List(ctx context.Context, labels map[string]string) ([]Container, error)
	// Remove kills and removes a container; a missing one is not an error.
	Remove(ctx context.Context, id string) error
	// Stop stops a running container: kill sends SIGKILL at once (a
	// machine's crash: nothing in it gets to say goodbye), else SIGTERM
	// and SIGKILL after a grace period (a clean shutdown). A container
	// stopped this way stays stopped until Start.
	Stop(ctx context.Context, id string, kill bool) error
	// Start starts a stopped container and returns it inspected.
	Start(ctx context.Context, id string) (*Container, error)
	// Exec runs a command to completion and returns its exit code.
	Exec(ctx context.Context, id string, cmd []string, stdio ExecIO) (int, error)
	// ExecDetached starts a long-running process in the container and returns
	// without waiting for it.
	ExecDetached(ctx context.Context, id string, cmd []string) error
	// Namespace opens the network namespace of a running container. The
	// caller closes it; the namespace lives as long as the container.
	Namespace(ctx context.Context, id string) (*netconf.Namespace, error)
	// NamespacePath names a running container's network namespace as a
	// file on the engine's host (a process there, such as dsrlab's agent,
	// opens it), or fails for an engine whose namespaces have no name.
	NamespacePath(ctx context.Context, id string) (string, error)
	// Image returns a local image, or ErrNotFound.
	Image(ctx context.Context, ref string) (*Image, error)
	// Events streams what the engine does to the containers that carry
	// every label given (start, die, kill, stop, restart, destroy ...),
	// from since on, up to until (zero: as they happen, until ctx ends).
	// The event channel is closed at the end; the error channel says why
	// the stream stopped early.
	Events(ctx context.Context, since, until time.Time, labels map[string]string) (<-chan Event, <-chan error)
}

// Event is one thing the engine did to a container.
type Event struct {
	Time      time.Time
	Container string // its name
	Action    string // the engine's word: start, die, kill, stop, restart, destroy ...
	Labels    map[string]string
}

// ImageBuilder is a runtime that can build images locally; there is no
// registry to pull from, so dsrlab's node image is built where it runs.
type ImageBuilder interface {
	Runtime
	// RemoveImage removes a local image by ID if no container uses it.
	RemoveImage(ctx context.Context, id string) error
	// BuildImage builds buildContext (a tar stream with a Dockerfile at its
	// root) and tags it.
	BuildImage(ctx context.Context, tag string, buildContext io.Reader) error
}

// Set is the engines of a lab's hosts, by host name.
type Set map[string]Runtime
