package docker

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/dsrlab/dsrlab/internal/fileio"
)

// globalKnownHosts is OpenSSH's system-wide list, read after the user's.
const globalKnownHosts = "/etc/ssh/ssh_known_hosts"

// knownHosts accepts a server only with a host key listed for it, as
// OpenSSH does with StrictHostKeyChecking: there is no one to ask about a
// new key while dsrlab works. It remembers why it refused, for the error.
type knownHosts struct {
	db       ssh.HostKeyCallback
	file     string // the user's known_hosts, named in advice
	accepted bool
	refusal  error
}

// loadKnownHosts reads the user's files (ssh_config's UserKnownHostsFile,
// or else ~/.ssh/known_hosts; none for "none"), then the system's.
func loadKnownHosts(user []string) (*knownHosts, error) {
	k := &knownHosts{file: globalKnownHosts}
	if len(user) > 0 {
		k.file = user[0]
	}
	var files []string
	for _, f := range append(slices.Clip(user), globalKnownHosts) {
		// Regular files only: knownhosts opens what it is given, and a
		// FIFO would block it.
		if err := fileio.CheckRegular(f); err == nil {
			files = append(files, f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read known hosts: %w", err)
		}
	}
	var err error
	if k.db, err = knownhosts.New(files...); err != nil {
		return nil, fmt.Errorf("read known hosts: %w", err)
	}
	return k, nil
}

// check is the handshake's host key callback.
func (k *knownHosts) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := k.db(hostname, remote, key)
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case err == nil:
		k.accepted = true
		return nil
	case errors.As(err, &keyErr) && len(keyErr.Want) == 0:
		k.refusal = k.unknown(hostname, key)
	case errors.As(err, &keyErr):
		k.refusal = k.changed(hostname, key, keyErr.Want)
	case errors.As(err, &revoked):
		k.refusal = fmt.Errorf("the SSH host key of %s (%s) is marked @revoked in %s:%d", knownhosts.Normalize(hostname), fingerprint(key), revoked.Revoked.Filename, revoked.Revoked.Line)
	default:
		k.refusal = fmt.Errorf("host key of %s: %w", knownhosts.Normalize(hostname), err)
	}
	return k.refusal
}

func (k *knownHosts) unknown(hostname string, key ssh.PublicKey) error {
	return fmt.Errorf("the SSH host key of %s is not known: the server offers %s. dsrlab only accepts host keys listed in %s. "+
		"Check this fingerprint against the host's own (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub, run there), then add the key: %s",
		knownhosts.Normalize(hostname), fingerprint(key), k.file, keyscanType(key), k.keyscan(hostname, key))
}

func (k *knownHosts) changed(hostname string, key ssh.PublicKey, want []knownhosts.KnownKey) error {
	var listed []string
	for _, w := range want {
		listed = append(listed, fmt.Sprintf("%s:%d has %s", w.Filename, w.Line, fingerprint(w.Key)))
	}
	host := knownhosts.Normalize(hostname)
	return fmt.Errorf("the SSH host key of %s has CHANGED: the server offers %s, but %s. Someone may be intercepting the connection, "+
		"or the host got new keys. Only once you know the new key is the host's, replace the old one: ssh-keygen -f %s -R '%s' && %s",
		host, fingerprint(key), strings.Join(listed, ", "), k.file, host, k.keyscan(hostname, key))
}

// keyscan is the command that adds the host's key of key's type.
func (k *knownHosts) keyscan(hostname string, key ssh.PublicKey) string {
	host, port, err := net.SplitHostPort(hostname)
	if err != nil {
		host, port = hostname, "22"
	}
	return fmt.Sprintf("ssh-keyscan -t %s -p %s %s >> %s", keyscanType(key), port, host, k.file)
}

// keyscanType is the name ssh-keyscan -t and the host key files use for
// key's type.
func keyscanType(key ssh.PublicKey) string {
	t := key.Type()
	if strings.HasPrefix(t, "ecdsa-") {
		return "ecdsa"
	}
	return strings.TrimPrefix(t, "ssh-")
}

func fingerprint(key ssh.PublicKey) string {
	return key.Type() + " " + ssh.FingerprintSHA256(key)
}

// probeKey is listed for no host, so looking it up returns every key that
// is listed for the host asked about.
var probeKey, _ = ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))

// algorithms are the host key algorithms to ask the server for: those of
// the keys known for it, so that a server with several keys proves the one
// known here rather than one it prefers (which would look like a changed
// key). Nil, the defaults, when none is known.
func (k *knownHosts) algorithms(hostname string, remote net.Addr) []string {
	var keyErr *knownhosts.KeyError
	if !errors.As(k.db(hostname, remote, probeKey), &keyErr) {
		return nil
	}
	var algos []string
	for _, w := range keyErr.Want {
		for _, a := range algorithmsOf(w.Key) {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos
}

func algorithmsOf(key ssh.PublicKey) []string {
	if key.Type() == ssh.KeyAlgoRSA {
		// One RSA key signs with any of these; SHA-2 first.
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{key.Type()}
}
