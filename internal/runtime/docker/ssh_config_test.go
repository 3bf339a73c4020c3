package docker

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/crypto/ssh"
)

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// An engine address names an alias of ~/.ssh/config, whose HostName,
// Port, User, IdentityFile and UserKnownHostsFile are followed; what the
// address itself says wins.
func TestSSHConfigAlias(t *testing.T) {
	home := sshHome(t)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	writeKey(t, home, "lab_key", priv, "")
	clientKey(t, home) // a default key the server does not accept
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	hostKey := newSigner(t)
	srv := newSSHServer(t, signer.PublicKey(), hostKey)
	if err := os.WriteFile(filepath.Join(home, ".ssh", "lab_known"), []byte(knownLine(srv.addr(), hostKey.PublicKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	engine := fakeEngine(t)
	writeConfig(t, filepath.Join(home, ".ssh", "config"), `
Host lab2 lab2-*
  HostName 127.0.0.1
  Port `+srv.port()+`
  User alice
  IdentityFile ~/.ssh/lab_key
  UserKnownHostsFile %d/.ssh/lab_known
Host *
  Port 1
  User nobody-else
`)
	for _, c := range []struct{ addr, user string }{
		{"ssh://lab2" + engine, "alice"},
		{"ssh://bob@lab2-b" + engine, "bob"},
		{"ssh://alice@lab2:" + srv.port() + engine, "alice"},
	} {
		d, err := dial(t, c.addr)
		if err != nil {
			t.Fatalf("%s: %v", c.addr, err)
		}
		if d.target.User != c.user || d.target.Host != "127.0.0.1" {
			t.Errorf("%s: logs in as %s at %s, want %s at 127.0.0.1", c.addr, d.target.User, d.target.Host, c.user)
		}
	}
	srv.mu.Lock()
	users := strings.Join(srv.users, " ")
	srv.mu.Unlock()
	if users != "alice bob alice" {
		t.Errorf("the server saw logins of %q", users)
	}
}

// The system's file is read after the user's, and the first value wins.
func TestSSHConfigUserBeforeSystem(t *testing.T) {
	home := sshHome(t)
	writeConfig(t, filepath.Join(home, ".ssh", "config"), "Host h2\n  User fromuser\n")
	writeConfig(t, systemSSHConfig, "Host h2\n  User fromsystem\n  Port 2222\n  HostName h2.example\n")
	d, err := newSSHDialer("ssh://h2")
	if err != nil {
		t.Fatal(err)
	}
	if d.target.User != "fromuser" || d.target.Address() != "h2.example:2222" {
		t.Errorf("configured %s at %s, want fromuser at h2.example:2222", d.target.User, d.target.Address())
	}
	ssh := filepath.Join(home, ".ssh")
	if want := []string{filepath.Join(ssh, "id_ed25519"), filepath.Join(ssh, "id_ecdsa"), filepath.Join(ssh, "id_rsa")}; !slices.Equal(d.keyFiles, want) ||
		!slices.Equal(d.knownHosts, []string{filepath.Join(ssh, "known_hosts")}) {
		t.Errorf("key files %q, known hosts %q: want OpenSSH's defaults", d.keyFiles, d.knownHosts)
	}
}

func TestSSHConfigErrors(t *testing.T) {
	for _, c := range []struct{ name, config, addr, want string }{
		{"proxy jump", "Host h2\n  ProxyJump bastion\n", "ssh://h2", `config gives ProxyJump "bastion" for h2: dsrlab connects to SSH servers directly`},
		{"proxy command", "Host *\n  ProxyCommand nc %h %p\n", "ssh://h2", `ProxyCommand "nc %h %p" for h2`},
		{"bad port", "Host h2\n  Port ssh\n", "ssh://h2", `config: Port "ssh" for h2 is not a port number`},
		{"unknown token", "Host h2\n  IdentityFile ~/.ssh/%L\n", "ssh://h2", "does not know the token %L"},
		{"no key file", "Host h2\n  IdentityFile ~/.ssh/missing\n", "ssh://127.0.0.1:1/x", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			home := sshHome(t)
			writeConfig(t, filepath.Join(home, ".ssh", "config"), c.config)
			_, err := newSSHDialer(c.addr)
			switch {
			case c.want == "" && err != nil:
				t.Fatal(err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), c.addr)):
				t.Errorf("error %v, want one starting with the address and saying %q", err, c.want)
			}
		})
	}
}

// A missing IdentityFile is named when no key is left to log in with.
func TestSSHConfigIdentityFileNamedWhenMissing(t *testing.T) {
	home := sshHome(t)
	clientKey(t, home) // not offered: IdentityFile replaces the defaults
	writeConfig(t, filepath.Join(home, ".ssh", "config"), "Host *\n  IdentityFile ~/.ssh/lab_key\n")
	srv := newSSHServer(t, nil, newSigner(t))
	_, err := dial(t, srv.url("", fakeEngine(t)))
	want := "the key files of ssh_config's IdentityFile (" + filepath.Join(home, ".ssh", "lab_key") + ")"
	if err == nil || !strings.Contains(err.Error(), "no SSH key to log in with") || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want it to say %q", err, want)
	}
}

func TestExpandPath(t *testing.T) {
	tok := tokens{home: "/home/me", localUser: "me", uid: "1000", localHost: "lab1", host: "10.0.0.2", alias: "h2", port: "22", remoteUser: "root"}
	for _, c := range []struct{ in, want, err string }{
		{"~/.ssh/id", "/home/me/.ssh/id", ""},
		{"~", "/home/me", ""},
		{"%d/keys/%r@%h", "/home/me/keys/root@10.0.0.2", ""},
		{"/k/%u-%i-100%%", "/k/me-1000-100%", ""},
		{"~/.ssh/%n_%p_%l", "/home/me/.ssh/h2_22_lab1", ""},
		// sha1("lab1" "10.0.0.2" "22" "root"), as OpenSSH's %C.
		{"/c/%C", "/c/" + sha1hex("lab110.0.0.222root"), ""},
		{"~other/.ssh/id", "~other/.ssh/id", ""},
		{"/k/%", "", "lone %"},
		{"/k/%L", "", "does not know the token %L"},
	} {
		got, err := expandPath(c.in, tok)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("expandPath(%q) = %q, %v; want an error saying %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("expandPath(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func sha1hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// A file the parser cannot read (Fedora's system file includes a Match
// final all) is left out, not a reason to fail every engine; an error
// about the connection says it was.
func TestSSHConfigUnreadableFileIsLeftOut(t *testing.T) {
	home := sshHome(t)
	hostKey := newSigner(t)
	srv := newSSHServer(t, nil, hostKey)
	trust(t, home, knownLine(srv.addr(), hostKey.PublicKey()))
	clientKey(t, home)
	writeConfig(t, systemSSHConfig, "Match final all\n  User nobody\n")
	writeConfig(t, filepath.Join(home, ".ssh", "config"), "Host lab2\n  User alice\n")
	d, err := newSSHDialer("ssh://lab2")
	if err != nil {
		t.Fatal(err)
	}
	if d.target.User != "alice" {
		t.Errorf("the readable file's User was not followed: %s", d.target.User)
	}
	_, err = dial(t, srv.url("", fakeEngine(t)))
	if err == nil || !strings.Contains(err.Error(), "ssh_config not followed, unreadable: "+systemSSHConfig) {
		t.Errorf("a refused login: %v, want it to name the file left out", err)
	}
}

// "none" turns a setting off: no identity file, no user known_hosts, no
// proxy (whichever of ProxyJump and ProxyCommand says it).
func TestSSHConfigNone(t *testing.T) {
	home := sshHome(t)
	writeConfig(t, filepath.Join(home, ".ssh", "config"), `
Host h2
  ProxyJump none
  IdentityFile none
  UserKnownHostsFile none
Host *
  ProxyCommand nc %h %p
`)
	d, err := newSSHDialer("ssh://h2")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.keyFiles) != 0 || d.knownHosts == nil || len(d.knownHosts) != 0 {
		t.Errorf("key files %q, known hosts %q: want none of either", d.keyFiles, d.knownHosts)
	}
	if _, err := newSSHDialer("ssh://h3"); err == nil || !strings.Contains(err.Error(), `ProxyCommand "nc %h %p" for h3`) {
		t.Errorf("another host: %v, want its ProxyCommand refused", err)
	}
}

// An Include of a device or a FIFO leaves the file that says it out, as
// any file the parser cannot read: the parser would read the device
// without end, and wait on the FIFO for ever.
func TestSSHConfigIncludeOfWhatIsNotAFile(t *testing.T) {
	home := sshHome(t)
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	nested := filepath.Join(t.TempDir(), "nested")
	writeConfig(t, nested, "Include "+fifo+"\n")
	for _, c := range []struct{ include, want string }{
		{"Include /dev/zero", "Include /dev/zero: /dev/zero: a device, not a regular file"},
		{"include=" + fifo, "a FIFO, not a regular file"},
		{"Include " + nested, "Include " + fifo + ": " + fifo + ": a FIFO"},
	} {
		writeConfig(t, filepath.Join(home, ".ssh", "config"), c.include+"\nHost lab2\n  User alice\n")
		d, err := newSSHDialer("ssh://lab2")
		if err != nil {
			t.Fatal(err)
		}
		if d.target.User == "alice" || !strings.Contains(d.unreadNote(), c.want) {
			t.Errorf("%s: user %q, left out: %q; want the file left out saying %q", c.include, d.target.User, d.unreadNote(), c.want)
		}
	}
}
