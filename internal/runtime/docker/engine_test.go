package docker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// silentEngine accepts TCP connections on 127.0.0.1 and never answers on
// them, as a host whose engine hangs (or a port that is not an engine's).
func silentEngine(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); close(done) })
	return ln.Addr().String()
}

// blackhole is an address on 127.0.0.1 where a connection is never
// accepted: a listening socket whose accept queue is full, so the kernel
// drops further SYNs, as a firewall that drops packets does.
func blackhole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	// Fill the queue (nobody accepts) until a connection no longer gets
	// through.
	for range 16 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("the kernel kept accepting connections into a full queue: cannot make a blackhole here")
	return ""
}

// Every way of not reaching an engine is said as what it is, with the
// dial's own error, never the Docker client's "Is the docker daemon
// running?" for all of them; each ends within the timeout.
func TestPingErrors(t *testing.T) {
	t.Setenv(TimeoutEnv, "300ms")
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	for _, tc := range []struct {
		name, addr string
		want       []string
	}{
		{"silent engine", "tcp://" + silentEngine(t),
			[]string{"accepted the connection but did not answer within 300ms (DSRLAB_ENGINE_TIMEOUT sets how long to wait)"}},
		{"blackholed engine", "tcp://" + blackhole(t),
			[]string{"did not accept a connection within 300ms", "is the host up"}},
		{"nothing listens", "tcp://" + closed.Addr().String(),
			[]string{"not reachable at tcp://" + closed.Addr().String(), "connection refused", "start it"}},
		{"no socket", "unix://" + filepath.Join(t.TempDir(), "none.sock"),
			[]string{"none.sock: connect: no such file or directory", "start it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewAt(tc.addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			err = d.Ping(context.Background())
			t.Log(err)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Ping: %v\nwant it to say %q", err, w)
				}
			}
			if err != nil && strings.Contains(err.Error(), "Is the docker daemon running") {
				t.Errorf("Ping: %v: the client's guess hides what happened", err)
			}
		})
	}
}

// A Ping the caller gives up on (Ctrl-C) ends at once and says so, even
// with a long timeout, for a tcp:// and an ssh:// engine.
func TestPingInterrupted(t *testing.T) {
	t.Setenv(TimeoutEnv, "1h")
	home := sshHome(t)
	clientKey(t, home)
	for _, addr := range []string{"tcp://" + silentEngine(t), "tcp://" + blackhole(t), "ssh://" + blackhole(t), "ssh://" + silentEngine(t)} {
		t.Run(addr, func(t *testing.T) {
			d, err := NewAt(addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			interrupt := errors.New("interrupt signal received")
			ctx, cancel := context.WithCancelCause(context.Background())
			time.AfterFunc(100*time.Millisecond, func() { cancel(interrupt) })
			err = d.Ping(ctx)
			t.Log(err)
			if !errors.Is(err, interrupt) && !strings.Contains(fmt_(err), interrupt.Error()) {
				t.Errorf("Ping interrupted: %v, want it to name the interruption", err)
			}
			if strings.Contains(fmt_(err), "Is the docker daemon running") || strings.Contains(fmt_(err), "start it") {
				t.Errorf("Ping interrupted: %v: advice for an engine that is down", err)
			}
		})
	}
}

// An ssh:// engine whose server does not accept or does not answer
// fails within the timeout, naming the wait.
func TestSSHTimeouts(t *testing.T) {
	t.Setenv(TimeoutEnv, "300ms")
	home := sshHome(t)
	clientKey(t, home)
	for _, tc := range []struct{ name, addr, want string }{
		{"blackholed", blackhole(t), "connect to the SSH server"},
		{"silent", silentEngine(t), "SSH handshake with"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewAt("ssh://"+tc.addr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			err = d.Ping(context.Background())
			t.Log(err)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "no answer within 300ms (DSRLAB_ENGINE_TIMEOUT") {
				t.Errorf("Ping: %v, want %q and the wait", err, tc.want)
			}
		})
	}
}

// An engine behind a working SSH server that never answers is said to be
// silent, not unreachable.
func TestSilentEngineBehindSSH(t *testing.T) {
	t.Setenv(TimeoutEnv, "300ms")
	home := sshHome(t)
	hostKey := newSigner(t)
	srv := newSSHServer(t, clientKey(t, home), hostKey)
	trust(t, home, knownLine(srv.addr(), hostKey.PublicKey()))
	sock := filepath.Join(t.TempDir(), "silent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	d, err := NewAt(srv.url("", sock), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "accepted the connection but did not answer within 300ms") {
		t.Errorf("Ping: %v", err)
	}
}

func TestTimeoutFromEnvironment(t *testing.T) {
	for _, bad := range []string{"5", "-1s", "0s", "soon"} {
		t.Setenv(TimeoutEnv, bad)
		if _, err := New(); err == nil || !strings.Contains(err.Error(), TimeoutEnv) {
			t.Errorf("%s=%s: %v", TimeoutEnv, bad, err)
		}
	}
	t.Setenv(TimeoutEnv, "")
	if d, err := Timeout(); err != nil || d != DefaultTimeout {
		t.Errorf("unset: %v, %v", d, err)
	}
}

// tlsFiles writes a CA, a server certificate it signed for 127.0.0.1 and
// a client certificate with its key; it returns the server's config,
// which asks for a client certificate signed by the CA.
func tlsFiles(t *testing.T, dir string) *tls.Config {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage, key *ecdsa.PrivateKey) []byte {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "test"}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	clientKey := newKey()
	clientDER, _ := x509.MarshalECPrivateKey(clientKey)
	write("ca.pem", "CERTIFICATE", caDER)
	write("cert.pem", "CERTIFICATE", issue(2, x509.ExtKeyUsageClientAuth, clientKey))
	write("key.pem", "EC PRIVATE KEY", clientDER)
	serverKey := newKey()
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{issue(3, x509.ExtKeyUsageServerAuth, serverKey)}, PrivateKey: serverKey}},
		ClientCAs:    pool, ClientAuth: tls.RequireAndVerifyClientCert,
	}
}

// A tcp:// engine with TLS is reached with the files' certificates; files
// that are no regular files, or not there, are refused at once.
func TestTLSEngine(t *testing.T) {
	dir := t.TempDir()
	srvCfg := tlsFiles(t, dir)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		io.WriteString(w, "OK")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	files := TLS{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	d, err := NewAt("tcp://"+ln.Addr().String(), &files)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Ping(context.Background()); err != nil {
		t.Fatalf("Ping over TLS: %v", err)
	}

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		edit func(*TLS)
		want string
	}{
		{func(f *TLS) { f.Cert = "/dev/zero" }, "/dev/zero: a device, not a regular file"},
		{func(f *TLS) { f.Key = fifo }, "a FIFO, not a regular file"},
		{func(f *TLS) { f.CA = filepath.Join(dir, "missing.pem") }, "missing.pem: no such file"},
		{func(f *TLS) { f.CA = f.Key }, "holds no PEM certificate"},
	} {
		bad := files
		tc.edit(&bad)
		if _, err := NewAt("tcp://"+ln.Addr().String(), &bad); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewAt with %+v: %v, want %q", bad, err, tc.want)
		}
	}
}

func fmt_(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
