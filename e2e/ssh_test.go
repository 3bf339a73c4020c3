package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// The host of the ssh:// engine test: a simulated host whose engine
// dsrlab reaches only through a real OpenSSH server running in the host's
// network namespace, as it would reach another machine's.
const (
	sshHost      = "e2h3"
	sshHostIndex = 2
	sshUnderlay  = "172.31.255.3"
	sshdPath     = "/usr/sbin/sshd" // sshd re-executes itself, so by absolute path
)

func TestSSHEngine(t *testing.T) {
	requireSetup(t)
	if _, err := os.Stat(sshdPath); err != nil {
		if os.Getenv("DSRLAB_REQUIRE_E2E") == "1" {
			t.Fatalf("no OpenSSH server (scripts/install-deps.sh installs openssh-server): %v", err)
		}
		t.Skipf("no OpenSSH server (apt-get install openssh-server): %v", err)
	}
	remote := startHost(t, sshHost, sshHostIndex)
	dir := t.TempDir()
	hostKey := writeSSHKey(t, filepath.Join(dir, "ssh_host_ed25519_key"))
	home := sshClientHome(t, filepath.Join(dir, "home"), filepath.Join(dir, "authorized_keys"))
	sshdLog := startSSHD(t, dir)
	engineURL := "ssh://root@" + sshUnderlay + "/run/docker-" + sshHost + ".sock"

	t.Run("lab with its real behind ssh://", func(t *testing.T) {
		trustHost(t, home, hostKey)
		file := sshLab(t, "sshlab", engineURL)
		t.Cleanup(func() { dsrlabAt(t, home, "down", "--name", "sshlab") })
		logins := sshLogins(t, sshdLog)
		if out, err := dsrlabAt(t, home, "up", "-t", file); err != nil {
			t.Fatalf("up: %v\n%s", err, out)
		}
		// Every stream of up (requests, and the agent's hijacked exec
		// streams) rides on one SSH connection.
		if n := sshLogins(t, sshdLog) - logins; n != 1 {
			t.Errorf("up logged in %d times, want once", n)
		}
		if names := labContainersOn(t, remote, "sshlab"); !strings.Contains(strings.Join(names, " "), "sshlab-real") {
			t.Fatalf("the engine behind SSH runs %v, want the real", names)
		}
		want := regexp.MustCompile(`^\[real 10\.111\.222\.11\] \('10\.111\.220\.11', \d+\): hello\n$`)
		if got := dockerExec(t, "hello\n", "sshlab-client", "nc", vip, vipPort); !want.MatchString(got) {
			t.Errorf("answer %q does not match %s", got, want)
		}
		if out, err := dsrlabAt(t, home, "verify", "--name", "sshlab"); err != nil {
			t.Errorf("verify: %v\n%s", err, out)
		}
		if out, err := dsrlabAt(t, home, "exec", "--name", "sshlab", "real", "--", "ip", "link", "show", "eth0"); err != nil || !strings.Contains(out, "eth0") {
			t.Errorf("exec on the host behind SSH: %v\n%s", err, out)
		}
		if out, err := dsrlabAt(t, home, "down", "--name", "sshlab"); err != nil {
			t.Fatalf("down: %v\n%s", err, out)
		}
		if left := labContainersOnBoth(t, remote, "sshlab"); len(left) > 0 {
			t.Errorf("left after down: %v", left)
		}
	})

	t.Run("unknown host key", func(t *testing.T) {
		// known_hosts lists a key, but not for this host.
		other, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		otherKey, err := ssh.NewPublicKey(other)
		if err != nil {
			t.Fatal(err)
		}
		writeKnownHosts(t, home, knownhosts.Line([]string{"172.31.255.99"}, otherKey))
		file := sshLab(t, "sshlabk", engineURL)
		t.Cleanup(func() { dsrlabAt(t, home, "down", "--name", "sshlabk") })
		logins := sshLogins(t, sshdLog)
		out, err := dsrlabAt(t, home, "up", "-t", file)
		if err == nil {
			t.Fatal("up succeeded with an unknown host key")
		}
		for _, w := range []string{
			engineURL, "host key of " + sshUnderlay + " is not known", ssh.FingerprintSHA256(hostKey),
			"ssh-keyscan -t ed25519 -p 22 " + sshUnderlay + " >> " + filepath.Join(home, ".ssh", "known_hosts"),
		} {
			if !strings.Contains(out, w) {
				t.Errorf("up's error does not say %q", w)
			}
		}
		if n := sshLogins(t, sshdLog) - logins; n != 0 {
			t.Errorf("up logged in %d times to a host it does not know", n)
		}
		if left := labContainersOnBoth(t, remote, "sshlabk"); len(left) > 0 {
			t.Errorf("left after the refused up: %v", left)
		}
	})
}

// sshLab writes the reference lab, named name, with its real on the host
// behind engine.
func sshLab(t *testing.T, name, engine string) string {
	t.Helper()
	hosts := fmt.Sprintf("hosts:\n  local: {underlay: %s}\n  %s: {docker: %q, underlay: %s}\n", localUnderlay, sshHost, engine, sshUnderlay)
	text := strings.Replace(referenceText(), "real:   {kind: real}", "real:   {kind: real, host: "+sshHost+"}", 1)
	text = strings.Replace(text, "name: dsr\nprefix: \"\"", "name: "+name+"\nprefix: \""+name+"-\"\n"+hosts, 1)
	file := filepath.Join(t.TempDir(), "lab.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// dsrlabAt runs dsrlab with home as its HOME, where its SSH keys and
// known_hosts are, and without the caller's ssh-agent.
func dsrlabAt(t *testing.T, home string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(dsrlabBin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "SSH_AUTH_SOCK=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOME="+home)
	out, err := cmd.CombinedOutput()
	t.Logf("dsrlab %s:\n%s", strings.Join(args, " "), out)
	return string(out), err
}

// writeSSHKey writes a new ed25519 private key in OpenSSH's format and
// returns its public key.
func writeSSHKey(t *testing.T, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// sshClientHome makes a home directory with a key for dsrlab, authorized
// for root by the file sshd reads.
func sshClientHome(t *testing.T, home, authorizedKeys string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	key := writeSSHKey(t, filepath.Join(home, ".ssh", "id_ed25519"))
	if err := os.WriteFile(authorizedKeys, ssh.MarshalAuthorizedKey(key), 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

func trustHost(t *testing.T, home string, hostKey ssh.PublicKey) {
	t.Helper()
	writeKnownHosts(t, home, knownhosts.Line([]string{sshUnderlay}, hostKey))
}

func writeKnownHosts(t *testing.T, home, line string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startSSHD runs OpenSSH's sshd in the simulated host's network namespace,
// on its underlay address, with the host key and authorized_keys of dir,
// until the test ends. It returns the file sshd logs to.
func startSSHD(t *testing.T, dir string) string {
	t.Helper()
	conf := filepath.Join(dir, "sshd_config")
	// StrictModes would refuse authorized_keys under the world-writable
	// /tmp; PAM is not needed for keys.
	text := fmt.Sprintf(`ListenAddress %s:22
HostKey %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowStreamLocalForwarding yes
PidFile none
LogLevel INFO
`, sshUnderlay, filepath.Join(dir, "ssh_host_ed25519_key"), filepath.Join(dir, "authorized_keys"))
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// sshd's privilege separation directory; a system sshd uses it too,
	// so it stays.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "sshd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// nsenter enters the namespace and execs sshd: the PID is sshd's.
	cmd := exec.Command("nsenter", "--net=/run/netns/dsrlab-host-"+sshHost, sshdPath, "-D", "-e", "-f", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("sshd log:\n%s", data)
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", sshUnderlay+":22", time.Second)
		if err == nil {
			conn.Close()
			return logPath
		}
		select {
		case <-exited:
			data, _ := os.ReadFile(logPath)
			t.Fatalf("sshd exited:\n%s", data)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd does not listen on %s:22: %v", sshUnderlay, err)
		}
	}
}

// sshLogins counts the logins sshd has accepted so far.
func sshLogins(t *testing.T, logPath string) int {
	t.Helper()
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(data, []byte("Accepted publickey for root"))
}
