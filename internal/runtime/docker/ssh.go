package docker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/client"
	"golang.org/x/crypto/ssh"

	"github.com/dsrlab/dsrlab/topology"
)

// openSSH reaches an engine through an SSH server, the way `ssh -L` would
// forward its socket, but without an ssh binary here or a docker CLI there.
func openSSH(addr string) (*Docker, error) {
	dialer, err := newSSHDialer(addr)
	if err != nil {
		return nil, err
	}
	// Every connection of the client comes from the dialer: the host only
	// has to be one the client parses and puts into requests. (Nor can an
	// HTTP proxy named in the environment intercept anything: the dialer
	// ignores the address it is asked for.)
	d, err := open(nil, dialer.DialContext, client.WithHost("http://docker"))
	if err != nil {
		return nil, err
	}
	d.addr, d.ssh = addr, dialer
	return d, nil
}

// sshDialer opens connections to an engine's unix socket as channels of
// one SSH connection, made on first use and again after it breaks. The
// Docker client dials often (exec streams hijack their connection, and
// many run at once); logging in each time would be slow and would trip
// the server's limits on unauthenticated connections.
type sshDialer struct {
	url    string // the engine address, which every error names
	target topology.SSHEngine
	// keyFiles and knownHosts are ssh_config's IdentityFile and
	// UserKnownHostsFile, or OpenSSH's defaults, expanded; keysFrom says
	// which, for errors.
	keyFiles, knownHosts []string
	keysFrom             string
	unread               []string // ssh_config files left out, and why
	// timeout bounds reaching the SSH server and logging in, whatever
	// the caller's context allows: a host that swallows packets must not
	// hang a command.
	timeout time.Duration
	// connecting is held while the connection is made, so that concurrent
	// dials share it, and is waited for with the dial's context.
	connecting chan struct{}

	mu     sync.Mutex
	conn   *ssh.Client // nil until made, and after it broke
	closed bool
}

// newSSHDialer completes the address from ssh_config: what the address
// says wins, as on ssh's command line.
func newSSHDialer(addr string) (*sshDialer, error) {
	target, err := topology.ParseSSHEngine(addr)
	if err != nil {
		return nil, err
	}
	d, err := configure(target)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	if d.timeout, err = Timeout(); err != nil {
		return nil, err
	}
	d.url, d.connecting = addr, make(chan struct{}, 1)
	return d, nil
}

func configure(target topology.SSHEngine) (*sshDialer, error) {
	alias := target.Host
	hc, err := readHostConfig(alias)
	if err != nil {
		return nil, err
	}
	if hc.hostName != "" {
		target.Host = strings.NewReplacer("%h", alias, "%%", "%").Replace(hc.hostName)
	}
	target.Port = cmp.Or(target.Port, hc.port)
	local, err := currentUser()
	if target.User = cmp.Or(target.User, hc.user); target.User == "" {
		if err != nil {
			return nil, err
		}
		target.User = local
	}
	home, _ := os.UserHomeDir()
	localHost, _ := os.Hostname()
	tok := tokens{home: home, localUser: local, uid: strconv.Itoa(os.Getuid()), localHost: localHost,
		host: target.Host, alias: alias, port: strconv.Itoa(cmp.Or(target.Port, topology.DefaultSSHPort)), remoteUser: target.User}
	d := &sshDialer{target: target, unread: hc.unread}
	expand := func(paths []string) ([]string, error) {
		out := []string{}
		for _, p := range paths {
			path, err := expandPath(p, tok)
			if err != nil {
				return nil, fmt.Errorf("ssh_config: %w", err)
			}
			out = append(out, path)
		}
		return out, nil
	}
	// Without IdentityFile or UserKnownHostsFile, OpenSSH's defaults.
	keyFiles, knownHosts := hc.identityFiles, hc.knownHosts
	d.keysFrom = "the key files ~/.ssh/" + strings.Join(defaultIdentities, ", ")
	if keyFiles == nil {
		for _, name := range defaultIdentities {
			keyFiles = append(keyFiles, filepath.Join("~/.ssh", name))
		}
	}
	if knownHosts == nil {
		knownHosts = []string{"~/.ssh/known_hosts"}
	}
	if d.keyFiles, err = expand(keyFiles); err != nil {
		return nil, err
	}
	if d.knownHosts, err = expand(knownHosts); err != nil {
		return nil, err
	}
	if hc.identityFiles != nil {
		d.keysFrom = "the key files of ssh_config's IdentityFile (" + strings.Join(d.keyFiles, ", ") + ")"
	}
	return d, nil
}

// unreadNote names the ssh_config files that were left out, as a
// parenthesis for errors about the connection.
func (d *sshDialer) unreadNote() string {
	if len(d.unread) == 0 {
		return ""
	}
	return " (ssh_config not followed, unreadable: " + strings.Join(d.unread, "; ") + ")"
}

// currentUser is whom OpenSSH logs in as when neither the address nor
// ssh_config names anyone.
func currentUser() (string, error) {
	if name := os.Getenv("USER"); name != "" {
		return name, nil
	}
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("no user in the address, and the current user is unknown (%v): write ssh://USER@HOST", err)
	}
	return u.Username, nil
}

// DialContext opens a connection to the engine's socket; the client's
// network and address are placeholders.
func (d *sshDialer) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	for retried := false; ; retried = true {
		c, err := d.client(ctx)
		if err != nil {
			return nil, err
		}
		conn, err := c.DialContext(ctx, "unix", d.target.Socket)
		var refused *ssh.OpenChannelError
		switch {
		case err == nil:
			return conn, nil
		case errors.As(err, &refused):
			return nil, d.socketRefused(refused)
		case retried || ctx.Err() != nil:
			return nil, fmt.Errorf("%s: open the engine's socket over SSH: %w", d.url, err)
		}
		// The connection broke before its watcher noticed: once more, on
		// a fresh one.
		d.drop(c)
	}
}

// ready makes sure the engine's socket can be reached, so that a problem
// with SSH is reported as what it is rather than as a stopped engine.
func (d *sshDialer) ready(ctx context.Context) error {
	conn, err := d.DialContext(ctx, "", "")
	if err != nil {
		return err
	}
	return conn.Close()
}

// socketRefused explains a refused forward. OpenSSH's sshd gives the same
// answer whether the socket is missing, not the user's to open, or
// forwarding to sockets is off, so the advice covers all three.
func (d *sshDialer) socketRefused(err *ssh.OpenChannelError) error {
	if err.Reason == ssh.Prohibited {
		return fmt.Errorf("%s: sshd on %s does not forward connections to unix sockets (%q): allow it with AllowStreamLocalForwarding yes in its sshd_config",
			d.url, d.target.Host, err.Message)
	}
	return fmt.Errorf("%s: sshd on %s could not open the engine's socket %s (%q): is the Docker engine running there, listening on that socket; "+
		"may %s use it (root, or a member of the docker group); and does sshd allow forwarding to sockets (AllowStreamLocalForwarding yes, no DisableForwarding)?",
		d.url, d.target.Host, d.target.Socket, err.Message, d.target.User)
}

// client returns the SSH connection, making it if there is none.
func (d *sshDialer) client(ctx context.Context) (*ssh.Client, error) {
	select {
	case d.connecting <- struct{}{}:
		defer func() { <-d.connecting }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	d.mu.Lock()
	c, closed := d.conn, d.closed
	d.mu.Unlock()
	switch {
	case closed:
		return nil, fmt.Errorf("%s: %w", d.url, net.ErrClosed)
	case c != nil:
		return c, nil
	}
	c, err := d.connect(ctx)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		c.Close()
		return nil, fmt.Errorf("%s: %w", d.url, net.ErrClosed)
	}
	d.conn = c
	done := make(chan struct{})
	go func() {
		c.Wait()
		close(done)
		d.drop(c)
	}()
	go keepAlive(c, done, keepAliveEvery)
	return c, nil
}

// keepAliveEvery is how often an idle connection is asked whether the
// server still answers, and how long it has to.
const keepAliveEvery = 15 * time.Second

// keepAlive closes c once the server stops answering, as OpenSSH's
// ServerAliveInterval does: a connection that died without a word (a host
// gone, a NAT that forgot it) would otherwise hang every stream on it,
// with no deadline of its own (a capture, an exec).
func keepAlive(c *ssh.Client, done <-chan struct{}, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		answered := make(chan error, 1)
		go func() {
			_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		select {
		case err := <-answered:
			if err == nil {
				continue
			}
		case <-time.After(every):
		case <-done:
			return
		}
		c.Close()
		return
	}
}

// drop forgets a broken connection, so that the next dial makes another.
func (d *sshDialer) drop(c *ssh.Client) {
	d.mu.Lock()
	if d.conn == c {
		d.conn = nil
	}
	d.mu.Unlock()
	c.Close()
}

// Close closes the SSH connection and every stream on it; dials fail
// from then on.
func (d *sshDialer) Close() error {
	d.mu.Lock()
	c := d.conn
	d.conn, d.closed = nil, true
	d.mu.Unlock()
	if c == nil {
		return nil
	}
	if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("%s: %w", d.url, err)
	}
	return nil
}

// connect opens the TCP connection, checks the host key and logs in.
func (d *sshDialer) connect(ctx context.Context) (*ssh.Client, error) {
	ids, err := loadIdentities(d.keyFiles, d.keysFrom)
	if err != nil {
		return nil, fmt.Errorf("%s: %w%s", d.url, err, d.unreadNote())
	}
	defer ids.Close()
	hosts, err := loadKnownHosts(d.knownHosts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.url, err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, d.timeout,
		fmt.Errorf("no answer within %v (%s sets how long to wait)", d.timeout, TimeoutEnv))
	defer cancel()
	addr := d.target.Address()
	var nd net.Dialer
	tcp, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		if isTimeout(err) {
			// The dial's deadline is the context's: its end, and why,
			// follow.
			<-ctx.Done()
		}
		if ctx.Err() != nil {
			// The dial's own words would be "i/o timeout" or "operation
			// was canceled": say which wait ended, and why.
			err = context.Cause(ctx)
		}
		return nil, fmt.Errorf("%s: connect to the SSH server %s: %w%s", d.url, addr, describeDialError(err), d.unreadNote())
	}
	cfg := &ssh.ClientConfig{
		User:              d.target.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(ids.signers...)},
		HostKeyCallback:   hosts.check,
		HostKeyAlgorithms: hosts.algorithms(addr, tcp.RemoteAddr()),
	}
	// The handshake takes no context: a deadline, moved into the past when
	// the context ends, bounds it.
	deadline, _ := ctx.Deadline()
	tcp.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { tcp.SetDeadline(time.Unix(1, 0)) })
	conn, chans, reqs, err := ssh.NewClientConn(tcp, addr, cfg)
	if !stop() && err == nil {
		conn.Close()
		err = ctx.Err()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The connection's deadline is the context's: its end, and
		// why, follow.
		<-ctx.Done()
	}
	if err != nil {
		tcp.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: SSH handshake with %s: %w", d.url, addr, context.Cause(ctx))
		}
		return nil, d.handshakeError(err, hosts, ids)
	}
	tcp.SetDeadline(time.Time{})
	return ssh.NewClient(conn, chans, reqs), nil
}

// handshakeError says which part of the handshake failed.
func (d *sshDialer) handshakeError(err error, hosts *knownHosts, ids *identities) error {
	switch {
	case hosts.refusal != nil:
		return fmt.Errorf("%s: %w", d.url, hosts.refusal)
	case hosts.accepted:
		return fmt.Errorf("%s: logging in as %s failed (%v): the server accepted none of the keys offered (%s)%s; "+
			"add one of their public keys to ~%s/.ssh/authorized_keys on %s%s",
			d.url, d.target.User, err, ids.describe(), ids.skippedNote(), d.target.User, d.target.Host, d.unreadNote())
	}
	return fmt.Errorf("%s: SSH handshake with %s: %w%s", d.url, d.target.Address(), err, d.unreadNote())
}

// describeDialError rewords a refused connection. (The Docker client also
// replaces any error whose text says "connection refused" with its own
// "is the docker daemon running?", which would hide that it is sshd that
// is not there.)
func describeDialError(err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return errors.New("nothing listens there: is sshd running on that host and port?")
	}
	return err
}
