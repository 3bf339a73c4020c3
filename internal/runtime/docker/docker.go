// Package docker implements runtime.Runtime with the Docker Engine API.
package docker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/dsrlab/dsrlab/internal/fileio"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
)

var _ runtime.ImageBuilder = (*Docker)(nil)

// Docker talks to the engine named by the usual DOCKER_HOST environment,
// or to another host's engine.
type Docker struct {
	c    *client.Client
	addr string     // the engine's address as given, for errors
	ssh  *sshDialer // how an ssh:// engine is reached; nil for others
	// network and address are the engine's socket for unix:// and
	// tcp:// engines.
	network, address string
	timeout          time.Duration
}

// TimeoutEnv names the environment variable that sets how long dsrlab
// waits for an engine to accept a connection (and an SSH server to log it
// in) and to answer its first request, as a Go duration ("10s").
const TimeoutEnv = "DSRLAB_ENGINE_TIMEOUT"

// DefaultTimeout is that wait unless set: an engine of a lab answers in
// milliseconds, and one that does not within seconds is down, blackholed
// or not an engine.
const DefaultTimeout = 5 * time.Second

// Timeout is the wait TimeoutEnv sets, or DefaultTimeout.
func Timeout() (time.Duration, error) {
	s := os.Getenv(TimeoutEnv)
	if s == "" {
		return DefaultTimeout, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration, such as 5s or 1m", TimeoutEnv, s)
	}
	return d, nil
}

// New connects lazily: the first call fails if no engine answers.
func New() (*Docker, error) {
	return open(nil, nil, client.FromEnv)
}

// TLS names the client certificate files for an engine reached over TCP.
type TLS struct{ CA, Cert, Key string }

// NewAt connects to the engine at addr (unix:///PATH, tcp://HOST:PORT, or
// ssh://[USER@]HOST[:PORT][/SOCKET]), with TLS when tls is set (tcp://
// only): another host's engine.
func NewAt(addr string, tls *TLS) (*Docker, error) {
	if strings.HasPrefix(addr, "ssh://") {
		if tls != nil {
			return nil, fmt.Errorf("%s: TLS files go with tcp:// engines; SSH encrypts and authenticates by itself", addr)
		}
		return openSSH(addr)
	}
	cfg, err := tlsConfig(tls)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return open(cfg, nil, client.WithHost(addr))
}

// tlsConfig reads the client certificate files, as regular files of a
// bounded size (the Docker client's own reader takes whatever a path
// gives: /dev/zero until memory runs out).
func tlsConfig(files *TLS) (*tls.Config, error) {
	if files == nil {
		return nil, nil
	}
	var pem [3][]byte
	for i, path := range []string{files.CA, files.Cert, files.Key} {
		data, err := fileio.ReadRegular(path, fileio.MaxText)
		if err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		pem[i] = data
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem[0]) {
		return nil, fmt.Errorf("TLS: %s holds no PEM certificate", files.CA)
	}
	cert, err := tls.X509KeyPair(pem[1], pem[2])
	if err != nil {
		return nil, fmt.Errorf("TLS: %s and %s: %w", files.Cert, files.Key, err)
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// open makes the client. Its connections are dialled with the timeout, by
// sshDial for an ssh:// engine; TLS is used when cfg is set.
func open(cfg *tls.Config, sshDial func(context.Context, string, string) (net.Conn, error), opts ...client.Opt) (*Docker, error) {
	timeout, err := Timeout()
	if err != nil {
		return nil, err
	}
	d := &Docker{timeout: timeout}
	transport := &http.Transport{
		// As the Docker client's own: idle connections are let go.
		MaxIdleConns: 6, IdleConnTimeout: 30 * time.Second,
		TLSClientConfig: cfg, TLSHandshakeTimeout: timeout,
	}
	dial := sshDial
	if dial == nil {
		dial = d.dial
	}
	// The engine on a Debian host can be much older than this client library;
	// negotiation picks the newest API version both understand.
	opts = append([]client.Opt{client.WithHTTPClient(&http.Client{Transport: transport, CheckRedirect: client.CheckRedirect})}, opts...)
	opts = append(opts, client.WithDialContext(dial), client.WithAPIVersionNegotiation())
	c, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	d.c, d.addr = c, c.DaemonHost()
	if u, err := client.ParseHostURL(d.addr); err == nil {
		d.network, d.address = u.Scheme, u.Host
	}
	return d, nil
}

// dialed is where dial leaves the outcome of a dial made for Ping, whose
// errors the Docker client would otherwise turn into "Is the docker
// daemon running?", whatever they were.
type dialed struct {
	mu  sync.Mutex
	err error
	ok  bool
}

type dialedKey struct{}

// dial connects to a unix:// or tcp:// engine within the timeout. A
// tcp:// address is the one the transport asks for, which may be a proxy.
func (d *Docker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.network == "unix" {
		network, addr = "unix", d.address
	}
	nd := net.Dialer{Timeout: d.timeout}
	conn, err := nd.DialContext(ctx, network, addr)
	if r, ok := ctx.Value(dialedKey{}).(*dialed); ok {
		r.mu.Lock()
		r.err, r.ok = err, r.ok || err == nil
		r.mu.Unlock()
	}
	return conn, err
}

// Close releases the client's connections (and its SSH connection).
func (d *Docker) Close() error {
	err := d.c.Close()
	if d.ssh != nil {
		err = errors.Join(err, d.ssh.Close())
	}
	return err
}

// Ping checks that the engine answers, within the timeout. Commands ping
// before anything else, so that an engine that is down, blackholed or
// silent fails them in seconds, with what went wrong: the dial's own
// error, the time waited, or the signal that interrupted it.
func (d *Docker) Ping(ctx context.Context) error {
	noAnswer := fmt.Errorf("no answer within %v (%s sets how long to wait)", d.timeout, TimeoutEnv)
	pctx, cancel := context.WithTimeoutCause(ctx, d.timeout, noAnswer)
	defer cancel()
	interrupted := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("the Docker engine at %s: %w", d.addr, context.Cause(ctx))
		}
		return err
	}
	where := ""
	if d.ssh != nil {
		// What went wrong with SSH (the server, its host key, the login,
		// the socket) says what to do itself: the advice below is for an
		// engine that is not running.
		if err := d.ssh.ready(pctx); err != nil {
			return interrupted(err)
		}
		where = " on " + d.ssh.target.Host
	}
	// An ssh:// engine's socket was just reached (ready): the engine
	// has its connection.
	dl := dialed{ok: d.ssh != nil}
	_, err := d.c.Ping(context.WithValue(pctx, dialedKey{}, &dl))
	if err == nil {
		return nil
	}
	dl.mu.Lock()
	dialErr, connected := dl.err, dl.ok
	dl.mu.Unlock()
	wait := fmt.Sprintf("%v (%s sets how long to wait)", d.timeout, TimeoutEnv)
	switch {
	case ctx.Err() != nil:
		return interrupted(err)
	case connected && context.Cause(pctx) == noAnswer:
		return fmt.Errorf("the Docker engine at %s accepted the connection but did not answer within %s: is that a Docker engine, and is it working?", d.addr, wait)
	case context.Cause(pctx) == noAnswer || dialErr != nil && isTimeout(dialErr):
		return fmt.Errorf("the Docker engine at %s did not accept a connection within %s: is the host up, and the address right?", d.addr, wait)
	case dialErr != nil && (errors.Is(dialErr, syscall.ECONNREFUSED) || errors.Is(dialErr, fs.ErrNotExist)):
		return fmt.Errorf("the Docker engine is not reachable at %s (%v); start it%s, e.g. "+
			"`systemctl start docker` or `dockerd >/var/log/dockerd.log 2>&1 &` "+
			"(scripts/install-deps.sh installs and starts it)", d.addr, dialErr, where)
	case dialErr != nil:
		return fmt.Errorf("the Docker engine is not reachable at %s: %w", d.addr, dialErr)
	}
	return fmt.Errorf("the Docker engine at %s: %w", d.addr, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (d *Docker) Run(ctx context.Context, spec runtime.ContainerSpec) (*runtime.Container, error) {
	cfg := &container.Config{
		Image:    spec.Image,
		Cmd:      spec.Cmd,
		Env:      envList(spec.Env),
		Labels:   spec.Labels,
		Hostname: spec.Hostname,
	}
	host := &container.HostConfig{
		// Links are wired by dsrlab itself; Docker's own networking would add
		// an interface and routes the lab does not describe.
		NetworkMode:   "none",
		CapAdd:        spec.CapAdd,
		Sysctls:       spec.Sysctls,
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		Binds:         spec.Binds,
	}
	if spec.RestartPolicy != "" {
		host.RestartPolicy.Name = container.RestartPolicyMode(spec.RestartPolicy)
	}
	if spec.HostNetwork {
		host.NetworkMode = "host"
	}
	if spec.HostPID {
		host.PidMode = "host"
	}
	if spec.Mounts {
		// Ignored by an engine on a host without AppArmor or SELinux.
		host.SecurityOpt = []string{"apparmor=unconfined", "label=disable"}
	}
	created, err := d.c.ContainerCreate(ctx, cfg, host, nil, nil, spec.Name)
	if cerrdefs.IsConflict(err) {
		return nil, fmt.Errorf("create container %s: %w: %w", spec.Name, runtime.ErrNameInUse, err)
	}
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", spec.Name, err)
	}
	if err := d.c.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		// The created-but-not-started container is ours: do not leave it behind.
		_ = d.Remove(context.WithoutCancel(ctx), created.ID)
		return nil, fmt.Errorf("start container %s: %w", spec.Name, err)
	}
	c, err := d.running(ctx, created.ID)
	if err != nil {
		_ = d.Remove(context.WithoutCancel(ctx), created.ID)
		return nil, err
	}
	return c, nil
}

func (d *Docker) Start(ctx context.Context, id string) (*runtime.Container, error) {
	if err := d.c.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return nil, fmt.Errorf("start container %s: %w", id, err)
	}
	return d.running(ctx, id)
}

// running inspects a container that was just started and fails if it did
// not stay up: its network namespace is only there while it runs.
func (d *Docker) running(ctx context.Context, id string) (*runtime.Container, error) {
	c, err := d.Inspect(ctx, id)
	if err != nil {
		return nil, err
	}
	if !c.Running() {
		return nil, fmt.Errorf("container %s exited right after start (state %s): check its cmd", c.Name, c.State)
	}
	return c, nil
}

// NamespacePath is /proc/PID/ns/net of the container's init, as the
// engine's host sees it.
func (d *Docker) NamespacePath(ctx context.Context, id string) (string, error) {
	pid, name, err := d.pid(ctx, id)
	if err != nil {
		return "", err
	}
	if pid == 0 {
		return "", fmt.Errorf("container %s is not running; `dsrlab up` starts it", name)
	}
	return fmt.Sprintf("/proc/%d/ns/net", pid), nil
}

func (d *Docker) pid(ctx context.Context, id string) (int, string, error) {
	info, err := d.c.ContainerInspect(ctx, id)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return 0, "", fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
		}
		return 0, "", fmt.Errorf("inspect container %s: %w", id, err)
	}
	if info.State == nil {
		return 0, trimSlash(info.Name), nil
	}
	return info.State.Pid, trimSlash(info.Name), nil
}

// Namespace enters a container through its init's PID, read right before:
// a PID read earlier could have been reused by another process since.
func (d *Docker) Namespace(ctx context.Context, id string) (*netconf.Namespace, error) {
	pid, name, err := d.pid(ctx, id)
	if err != nil {
		return nil, err
	}
	if pid == 0 {
		return nil, fmt.Errorf("container %s is not running; `dsrlab up` starts it", name)
	}
	return netconf.FromPID(pid, name)
}

func (d *Docker) Inspect(ctx context.Context, nameOrID string) (*runtime.Container, error) {
	info, err := d.c.ContainerInspect(ctx, nameOrID)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("container %s: %w", nameOrID, runtime.ErrNotFound)
		}
		return nil, fmt.Errorf("inspect container %s: %w", nameOrID, err)
	}
	c := &runtime.Container{
		ID:      info.ID,
		Name:    trimSlash(info.Name),
		Image:   info.Config.Image,
		Labels:  info.Config.Labels,
		Created: info.Created,
	}
	if info.State != nil {
		c.State = info.State.Status
	}
	return c, nil
}

func (d *Docker) List(ctx context.Context, labels map[string]string) ([]runtime.Container, error) {
	args := filters.NewArgs()
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	list, err := d.c.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]runtime.Container, 0, len(list))
	for _, s := range list {
		name := ""
		if len(s.Names) > 0 {
			name = trimSlash(s.Names[0])
		}
		out = append(out, runtime.Container{ID: s.ID, Name: name, Image: s.Image, State: string(s.State), Labels: s.Labels})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// stopGrace is how long a clean stop waits for a container's processes
// to end after SIGTERM: a BGP speaker withdraws its routes in well under it.
const stopGrace = 5

func (d *Docker) Stop(ctx context.Context, id string, kill bool) error {
	var err error
	if kill {
		err = d.c.ContainerKill(ctx, id, "KILL")
	} else {
		grace := stopGrace
		err = d.c.ContainerStop(ctx, id, container.StopOptions{Timeout: &grace})
	}
	if err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	return nil
}

func (d *Docker) Remove(ctx context.Context, id string) error {
	err := d.c.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

func (d *Docker) Exec(ctx context.Context, id string, cmd []string, stdio runtime.ExecIO) (int, error) {
	opts := container.ExecOptions{
		Cmd: cmd, AttachStdin: stdio.Stdin != nil, AttachStdout: true, AttachStderr: true, Tty: stdio.TTY,
	}
	if stdio.TTY && stdio.Rows > 0 {
		opts.ConsoleSize = &[2]uint{stdio.Rows, stdio.Cols}
	}
	ex, err := d.c.ContainerExecCreate(ctx, id, opts)
	if err != nil {
		return -1, fmt.Errorf("exec %q: %w", cmd, err)
	}
	att, err := d.c.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{Tty: stdio.TTY, ConsoleSize: opts.ConsoleSize})
	if err != nil {
		return -1, fmt.Errorf("exec %q: attach: %w", cmd, err)
	}
	defer att.Close()
	// The hijacked stream does not watch ctx: closing it is what ends a
	// command that hangs when the caller gives up (Ctrl-C during up).
	defer context.AfterFunc(ctx, att.Close)()
	if stdio.Stdin != nil {
		go func() {
			io.Copy(att.Conn, stdio.Stdin)
			// Half-close so the command sees end of input and can finish.
			att.CloseWrite()
		}()
	}
	stdout, stderr := orDiscard(stdio.Stdout), orDiscard(stdio.Stderr)
	// Without a terminal the engine multiplexes stdout and stderr on one
	// stream; with one there is a single raw stream.
	if stdio.TTY {
		_, err = io.Copy(stdout, att.Reader)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, att.Reader)
	}
	if err != nil {
		return -1, fmt.Errorf("exec %q: read output: %w", cmd, err)
	}
	st, err := d.c.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return -1, fmt.Errorf("exec %q: inspect: %w", cmd, err)
	}
	return st.ExitCode, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func (d *Docker) ExecDetached(ctx context.Context, id string, cmd []string) error {
	ex, err := d.c.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd})
	if err != nil {
		return fmt.Errorf("exec %q: %w", cmd, err)
	}
	if err := d.c.ContainerExecStart(ctx, ex.ID, container.ExecStartOptions{Detach: true}); err != nil {
		return fmt.Errorf("exec %q: start: %w", cmd, err)
	}
	return nil
}

func (d *Docker) Image(ctx context.Context, ref string) (*runtime.Image, error) {
	img, err := d.c.ImageInspect(ctx, ref)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("image %s: %w", ref, runtime.ErrNotFound)
		}
		return nil, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	out := &runtime.Image{ID: img.ID, Labels: map[string]string{}}
	if img.Config != nil && img.Config.Labels != nil {
		out.Labels = img.Config.Labels
	}
	return out, nil
}

func (d *Docker) RemoveImage(ctx context.Context, id string) error {
	if _, err := d.c.ImageRemove(ctx, id, image.RemoveOptions{PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove image %s: %w", id, err)
	}
	return nil
}

func (d *Docker) BuildImage(ctx context.Context, tag string, buildContext io.Reader) error {
	resp, err := d.c.ImageBuild(ctx, buildContext, build.ImageBuildOptions{
		Tags:           []string{tag},
		Remove:         true,
		ForceRemove:    true,
		SuppressOutput: true,
	})
	if err != nil {
		return fmt.Errorf("build image %s: %w", tag, err)
	}
	defer resp.Body.Close()
	// The build's outcome is only in the streamed messages, not the status code.
	if err := jsonmessage.DisplayJSONMessagesStream(resp.Body, io.Discard, 0, false, nil); err != nil {
		var jm *jsonmessage.JSONError
		if errors.As(err, &jm) {
			return fmt.Errorf("build image %s: %s", tag, jm.Message)
		}
		return fmt.Errorf("build image %s: %w", tag, err)
	}
	return nil
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func trimSlash(name string) string {
	if len(name) > 0 && name[0] == '/' {
		return name[1:]
	}
	return name
}

func (d *Docker) Events(ctx context.Context, since, until time.Time, labels map[string]string) (<-chan runtime.Event, <-chan error) {
	args := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)))
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	opts := events.ListOptions{Since: strconv.FormatInt(since.Unix(), 10), Filters: args}
	if !until.IsZero() {
		// Whole seconds, rounded up; the events after until are
		// dropped below.
		opts.Until = strconv.FormatInt(until.Unix()+1, 10)
	}
	msgs, errs := d.c.Events(ctx, opts)
	out, errc := make(chan runtime.Event), make(chan error, 1)
	go func() {
		defer close(out)
		for {
			select {
			case m := <-msgs:
				e := runtime.Event{Time: time.Unix(0, m.TimeNano), Container: m.Actor.Attributes["name"], Action: string(m.Action), Labels: m.Actor.Attributes}
				if e.Time.Before(since) || (!until.IsZero() && e.Time.After(until)) {
					continue // the engine counts in whole seconds
				}
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			case err := <-errs:
				// The engine ends a stream with an until by closing it.
				if ctx.Err() == nil && !(errors.Is(err, io.EOF) && !until.IsZero()) {
					errc <- fmt.Errorf("engine events: %w", err)
				}
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, errc
}
