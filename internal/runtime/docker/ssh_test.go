package docker

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshServer is an SSH server on 127.0.0.1 that forwards
// direct-streamlocal channels (what OpenSSH's sshd does for `ssh -L
// port:/socket`) and counts what happens to it.
type sshServer struct {
	t          *testing.T
	ln         net.Listener
	hostKeys   []ssh.Signer
	authorized ssh.PublicKey
	prohibit   atomic.Bool // refuse socket forwarding, as AllowStreamLocalForwarding no does
	// mute leaves global requests (keepalives) unanswered, as a server
	// on a host that vanished would.
	mute atomic.Bool

	keysOffered atomic.Int32 // public keys a client offered or signed with
	logins      atomic.Int32
	mu          sync.Mutex
	users       []string
	conns       []net.Conn
}

func newSSHServer(t *testing.T, authorized ssh.PublicKey, hostKeys ...ssh.Signer) *sshServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sshServer{t: t, ln: ln, hostKeys: hostKeys, authorized: authorized}
	t.Cleanup(func() {
		ln.Close()
		s.kill()
	})
	go s.serve()
	return s
}

func (s *sshServer) addr() string { return s.ln.Addr().String() }

// user is whom the first login was for.
func (s *sshServer) user() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.users) == 0 {
		return ""
	}
	return s.users[0]
}

func (s *sshServer) port() string {
	_, port, _ := net.SplitHostPort(s.addr())
	return port
}

// url is an engine address for socket on this server.
func (s *sshServer) url(user, socket string) string {
	if user != "" {
		user += "@"
	}
	return "ssh://" + user + s.addr() + socket
}

func (s *sshServer) serve() {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			s.keysOffered.Add(1)
			if s.authorized == nil || !bytes.Equal(key.Marshal(), s.authorized.Marshal()) {
				return nil, errors.New("not authorized")
			}
			return nil, nil
		},
	}
	for _, k := range s.hostKeys {
		cfg.AddHostKey(k)
	}
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, conn)
		s.mu.Unlock()
		go s.handle(conn, cfg)
	}
}

func (s *sshServer) handle(conn net.Conn, cfg *ssh.ServerConfig) {
	sconn, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		conn.Close()
		return
	}
	s.logins.Add(1)
	s.mu.Lock()
	s.users = append(s.users, sconn.User())
	s.mu.Unlock()
	if !s.mute.Load() {
		go ssh.DiscardRequests(reqs)
	}
	for nc := range chans {
		if nc.ChannelType() != "direct-streamlocal@openssh.com" {
			nc.Reject(ssh.UnknownChannelType, "unknown channel type")
			continue
		}
		if s.prohibit.Load() {
			nc.Reject(ssh.Prohibited, "administratively prohibited")
			continue
		}
		var req struct {
			Path      string
			Reserved0 string
			Reserved1 uint32
		}
		if err := ssh.Unmarshal(nc.ExtraData(), &req); err != nil {
			nc.Reject(ssh.ConnectionFailed, "bad request")
			continue
		}
		sock, err := net.Dial("unix", req.Path)
		if err != nil {
			nc.Reject(ssh.ConnectionFailed, "open failed")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			sock.Close()
			continue
		}
		go ssh.DiscardRequests(chReqs)
		go func() {
			io.Copy(sock, ch)
			sock.(*net.UnixConn).CloseWrite()
		}()
		go func() {
			io.Copy(ch, sock)
			ch.CloseWrite()
			ch.Close()
			sock.Close()
		}()
	}
}

// kill breaks every connection, as a network failure or a restarted
// sshd would.
func (s *sshServer) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

// fakeEngine serves enough of the Engine API on a unix socket for Ping.
func fakeEngine(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Ostype", "linux")
		io.WriteString(w, "OK")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return path
}

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sshHome is a home directory for the client, made $HOME for the test,
// with no agent and $USER tester.
func sshHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("USER", "tester")
	t.Setenv("SSH_AUTH_SOCK", "")
	saved := systemSSHConfig
	systemSSHConfig = filepath.Join(home, "no-system-config")
	t.Cleanup(func() { systemSSHConfig = saved })
	return home
}

// writeKey stores a private key as an OpenSSH key file in home; with a
// passphrase, encrypted.
func writeKey(t *testing.T, home, name string, key any, passphrase string) {
	t.Helper()
	var block *pem.Block
	var err error
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(key, "")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(key, "", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", name), pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
}

// clientKey makes home's id_ed25519 and returns its public key.
func clientKey(t *testing.T, home string) ssh.PublicKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	writeKey(t, home, "id_ed25519", priv, "")
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer.PublicKey()
}

// trust writes home's known_hosts, one line per host pattern and key.
func trust(t *testing.T, home string, lines ...string) {
	t.Helper()
	data := strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func knownLine(addr string, key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
}

func dial(t *testing.T, url string) (*sshDialer, error) {
	t.Helper()
	d, err := newSSHDialer(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return d, d.ready(ctx)
}

func TestSSHEnginePing(t *testing.T) {
	home := sshHome(t)
	hostKey := newSigner(t)
	srv := newSSHServer(t, clientKey(t, home), hostKey)
	trust(t, home, knownLine(srv.addr(), hostKey.PublicKey()))
	d, err := NewAt(srv.url("", fakeEngine(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if u := srv.user(); u != "tester" {
		t.Errorf("logged in as %q, want $USER", u)
	}
}

func TestSSHOneConnectionForManyStreams(t *testing.T) {
	home := sshHome(t)
	hostKey := newSigner(t)
	srv := newSSHServer(t, clientKey(t, home), hostKey)
	trust(t, home, knownLine(srv.addr(), hostKey.PublicKey()))
	d, err := dial(t, srv.url("dsr", fakeEngine(t)))
	if err != nil {
		t.Fatal(err)
	}
	// A new HTTP connection for each request, as hijacked exec streams
	// are: all of them must ride on the one login.
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			resp, err := hc.Get("http://docker/_ping")
			if err == nil {
				resp.Body.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := srv.logins.Load(); n != 1 {
		t.Errorf("%d logins for 21 connections, want 1", n)
	}
	if u := srv.user(); u != "dsr" {
		t.Errorf("logged in as %q, want the address's user", u)
	}

	srv.kill()
	if err := d.ready(context.Background()); err != nil {
		t.Fatalf("after the connection broke: %v", err)
	}
	if n := srv.logins.Load(); n != 2 {
		t.Errorf("%d logins after the connection broke, want a second one", n)
	}

	d.Close()
	if err := d.ready(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("dial after Close: %v, want net.ErrClosed", err)
	}
}

func TestSSHHostKeys(t *testing.T) {
	hostKey, other := newSigner(t), newSigner(t)
	ecdsaKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecdsaHostKey, err := ssh.NewSignerFromKey(ecdsaKey)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		// known is known_hosts for the server at addr, or nil for none.
		known func(addr string) []string
		want  []string // in the error; none for success
	}{
		{"listed", func(addr string) []string {
			return []string{knownLine("198.51.100.7", other.PublicKey()), knownLine(addr, hostKey.PublicKey())}
		}, nil},
		{"hashed entry", func(addr string) []string {
			return []string{knownhosts.HashHostname(knownhosts.Normalize(addr)) + " " + string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(hostKey.PublicKey())))}
		}, nil},
		// The server would rather prove its ECDSA key; the client asks
		// for the one it knows.
		{"one of the server's keys listed", func(addr string) []string {
			return []string{knownLine(addr, hostKey.PublicKey())}
		}, nil},
		{"no known_hosts", nil, []string{
			"is not known", ssh.FingerprintSHA256(ecdsaHostKey.PublicKey()), "ssh-keyscan -t ecdsa -p PORT 127.0.0.1 >> HOME/.ssh/known_hosts",
		}},
		{"another host's key only", func(addr string) []string {
			return []string{knownLine("198.51.100.7", hostKey.PublicKey())}
		}, []string{"is not known"}},
		{"port 22 entry for another port", func(addr string) []string {
			return []string{knownLine("127.0.0.1", hostKey.PublicKey())}
		}, []string{"is not known"}},
		{"changed", func(addr string) []string {
			return []string{knownLine(addr, other.PublicKey())}
		}, []string{"has CHANGED", "HOME/.ssh/known_hosts:1 has ssh-ed25519 " + ssh.FingerprintSHA256(other.PublicKey()), "ssh-keygen -f HOME/.ssh/known_hosts -R '[127.0.0.1]:PORT'"}},
		{"revoked", func(addr string) []string {
			return []string{"@revoked * " + string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(hostKey.PublicKey()))), knownLine(addr, hostKey.PublicKey())}
		}, []string{"marked @revoked in HOME/.ssh/known_hosts:1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			home := sshHome(t)
			srv := newSSHServer(t, clientKey(t, home), ecdsaHostKey, hostKey)
			if c.known != nil {
				trust(t, home, c.known(srv.addr())...)
			}
			url := srv.url("", fakeEngine(t))
			_, err := dial(t, url)
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("connected")
			}
			if !strings.HasPrefix(err.Error(), url+": ") {
				t.Errorf("error does not start with the engine address: %v", err)
			}
			for _, w := range c.want {
				w = strings.NewReplacer("HOME", home, "PORT", srv.port()).Replace(w)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			if n := srv.keysOffered.Load(); n != 0 {
				t.Errorf("the client offered %d keys to a server it did not trust", n)
			}
		})
	}
}

func TestSSHLogin(t *testing.T) {
	hostKey := newSigner(t)
	_, agentKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	agentSigner, err := ssh.NewSignerFromKey(agentKey)
	if err != nil {
		t.Fatal(err)
	}
	_, lockedKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		agent      bool // an agent holding agentKey
		files      bool // an id_ed25519, and an id_ecdsa with a passphrase
		authorized func(file ssh.PublicKey) ssh.PublicKey
		want       []string
	}{
		{"key file", false, true, func(file ssh.PublicKey) ssh.PublicKey { return file }, nil},
		{"agent", true, false, func(ssh.PublicKey) ssh.PublicKey { return agentSigner.PublicKey() }, nil},
		{"agent key after a refused file key", true, true, func(ssh.PublicKey) ssh.PublicKey { return agentSigner.PublicKey() }, nil},
		{"no key accepted", true, true, func(ssh.PublicKey) ssh.PublicKey { return nil }, []string{
			"logging in as tester failed",
			ssh.FingerprintSHA256(agentSigner.PublicKey()) + " from ssh-agent",
			"from HOME/.ssh/id_ed25519",
			"HOME/.ssh/id_ecdsa has a passphrase: load it into ssh-agent",
			"~tester/.ssh/authorized_keys on 127.0.0.1",
		}},
		{"no usable key", false, false, nil, []string{
			"no SSH key to log in with", "~/.ssh/id_ed25519, id_ecdsa, id_rsa",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			home := sshHome(t)
			var file ssh.PublicKey
			if c.files {
				file = clientKey(t, home)
				writeKey(t, home, "id_ecdsa", lockedKey, "secret")
			}
			if c.agent {
				t.Setenv("SSH_AUTH_SOCK", serveAgent(t, agentKey))
			}
			var authorized ssh.PublicKey
			if c.authorized != nil {
				authorized = c.authorized(file)
			}
			srv := newSSHServer(t, authorized, hostKey)
			trust(t, home, knownLine(srv.addr(), hostKey.PublicKey()))
			_, err := dial(t, srv.url("", fakeEngine(t)))
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("logged in")
			}
			for _, w := range c.want {
				if w = strings.ReplaceAll(w, "HOME", home); !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

// serveAgent runs an ssh-agent holding key and returns its socket.
func serveAgent(t *testing.T, key ed25519.PrivateKey) string {
	t.Helper()
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: key}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				agent.ServeAgent(keyring, conn)
				conn.Close()
			}()
		}
	}()
	return path
}

func TestSSHSocketErrors(t *testing.T) {
	hostKey := newSigner(t)
	home := sshHome(t)
	srv := newSSHServer(t, clientKey(t, home), hostKey)
	trust(t, home, knownLine(srv.addr(), hostKey.PublicKey()))

	missing := srv.url("root", "/nonexistent/docker.sock")
	_, err := dial(t, missing)
	if err == nil || !strings.HasPrefix(err.Error(), missing+": ") ||
		!strings.Contains(err.Error(), "could not open the engine's socket /nonexistent/docker.sock") ||
		!strings.Contains(err.Error(), "may root use it") {
		t.Errorf("socket not there: %v", err)
	}

	srv.prohibit.Store(true)
	if _, err := dial(t, srv.url("", fakeEngine(t))); err == nil || !strings.Contains(err.Error(), "AllowStreamLocalForwarding yes") {
		t.Errorf("socket forwarding prohibited: %v", err)
	}
	if n := srv.logins.Load(); n != 2 {
		t.Errorf("%d logins, want one per engine", n)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	d, err := NewAt("ssh://"+closed, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Ping(context.Background())
	if want := fmt.Sprintf("ssh://%s: connect to the SSH server %s: nothing listens there", closed, closed); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("no SSH server: %v, want %q", err, want)
	}
}

func TestNewAtRefusesTLSWithSSH(t *testing.T) {
	if _, err := NewAt("ssh://h2", &TLS{CA: "ca.pem"}); err == nil || !strings.Contains(err.Error(), "TLS files go with tcp://") {
		t.Errorf("NewAt(ssh://, tls): %v", err)
	}
}

// A connection whose server stops answering is closed, so that streams on
// it end instead of hanging; one whose server answers is kept.
func TestSSHKeepAlive(t *testing.T) {
	home := sshHome(t)
	hostKey := newSigner(t)
	srv := newSSHServer(t, clientKey(t, home), hostKey)
	trust(t, home, knownLine(srv.addr(), hostKey.PublicKey()))
	// Generous times: a busy machine must not pass for a dead server. The
	// answering server gets a second for each keepalive and two of them;
	// the mute one ten seconds to be found out at 20 ms.
	for _, tc := range []struct {
		mute        bool
		every, wait time.Duration
	}{{false, time.Second, 2500 * time.Millisecond}, {true, 20 * time.Millisecond, 10 * time.Second}} {
		mute := tc.mute
		srv.mute.Store(mute)
		d, err := newSSHDialer(srv.url("", "/nowhere"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := d.client(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go keepAlive(c, done, tc.every)
		closed := make(chan struct{})
		go func() { c.Wait(); close(closed) }()
		select {
		case <-closed:
			if !mute {
				t.Error("a connection whose server answers keepalives was closed")
			}
		case <-time.After(tc.wait):
			if mute {
				t.Error("a connection whose server stopped answering is still open")
			}
		}
		close(done)
		d.Close()
	}
}
