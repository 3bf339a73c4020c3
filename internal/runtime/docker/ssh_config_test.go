package docker

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
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
	if d.keyFiles != nil || d.knownHosts != nil {
		t.Errorf("key files %q, known hosts %q: want OpenSSH's defaults", d.keyFiles, d.knownHosts)
	}
}

func TestSSHConfigErrors(t *testing.T) {
	for _, c := range []struct{ name, config, addr, want string }{
		{"proxy jump", "Host h2\n  ProxyJump bastion\n", "ssh://h2", `config gives ProxyJump "bastion" for h2: dsrlab connects to SSH servers directly`},
		{"proxy command", "Host *\n  ProxyCommand nc %h %p\n", "ssh://h2", `ProxyCommand "nc %h %p" for h2`},
		{"bad port", "Host h2\n  Port ssh\n", "ssh://h2", `config: Port "ssh" for h2 is not a port number`},
		{"unknown token", "Host h2\n  IdentityFile ~/.ssh/%C\n", "ssh://h2", "does not know the token %C"},
		{"unreadable", "Match exec true\n  User x\n", "ssh://h2", "/.ssh/config: "},
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
	for _, c := range []struct{ in, want, err string }{
		{"~/.ssh/id", "/home/me/.ssh/id", ""},
		{"~", "/home/me", ""},
		{"%d/keys/%r@%h", "/home/me/keys/root@10.0.0.2", ""},
		{"/k/%u-100%%", "/k/me-100%", ""},
		{"~other/.ssh/id", "~other/.ssh/id", ""},
		{"/k/%", "", "lone %"},
		{"/k/%p", "", "does not know the token %p"},
	} {
		got, err := expandPath(c.in, "/home/me", "me", "10.0.0.2", "root")
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
