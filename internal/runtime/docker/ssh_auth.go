package docker

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/dsrlab/dsrlab/internal/fileio"
)

// defaultIdentities are the key files OpenSSH offers when nothing else is
// configured, in its order (DSA is gone from OpenSSH and from x/crypto).
var defaultIdentities = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

// identities are the keys to log in with, found where OpenSSH looks: the
// agent at $SSH_AUTH_SOCK first, then the unencrypted key files
// (ssh_config's IdentityFile, or else the default ones of ~/.ssh).
type identities struct {
	signers []ssh.Signer
	origins []string // where each signer came from, for errors
	skipped []string // keys found but not usable, and why
	agent   net.Conn // open while the agent may be asked to sign
}

// loadIdentities offers the agent's keys, then those of files; where
// names the files in the error when there is no key at all.
func loadIdentities(files []string, where string) (*identities, error) {
	ids := &identities{}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		ids.fromAgent(sock)
	}
	for _, f := range files {
		ids.fromFile(f)
	}
	if len(ids.signers) == 0 {
		ids.Close()
		return nil, fmt.Errorf("no SSH key to log in with%s: dsrlab uses the keys of ssh-agent ($SSH_AUTH_SOCK) and %s",
			ids.skippedNote(), where)
	}
	return ids, nil
}

func (ids *identities) fromAgent(sock string) {
	conn, err := net.Dial("unix", sock)
	if err != nil {
		ids.skipped = append(ids.skipped, fmt.Sprintf("ssh-agent at $SSH_AUTH_SOCK: %v", err))
		return
	}
	signers, err := agent.NewClient(conn).Signers()
	if err != nil {
		conn.Close()
		ids.skipped = append(ids.skipped, fmt.Sprintf("ssh-agent at $SSH_AUTH_SOCK: %v", err))
		return
	}
	ids.agent = conn
	for _, s := range signers {
		ids.add(s, "ssh-agent")
	}
}

func (ids *identities) fromFile(path string) {
	data, err := fileio.ReadRegular(path, fileio.MaxText)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		ids.skipped = append(ids.skipped, err.Error())
		return
	}
	signer, err := ssh.ParsePrivateKey(data)
	var encrypted *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &encrypted):
		// dsrlab never prompts: it runs unattended, and under sudo.
		ids.skipped = append(ids.skipped, fmt.Sprintf("%s has a passphrase: load it into ssh-agent (ssh-add %s)", path, path))
	case err != nil:
		ids.skipped = append(ids.skipped, fmt.Sprintf("%s: %v", path, err))
	default:
		ids.add(signer, path)
	}
}

func (ids *identities) add(s ssh.Signer, origin string) {
	ids.signers = append(ids.signers, s)
	ids.origins = append(ids.origins, fmt.Sprintf("%s %s from %s", s.PublicKey().Type(), ssh.FingerprintSHA256(s.PublicKey()), origin))
}

// describe lists the keys offered.
func (ids *identities) describe() string { return strings.Join(ids.origins, "; ") }

// skippedNote is the keys that were not offered, as a parenthesis.
func (ids *identities) skippedNote() string {
	if len(ids.skipped) == 0 {
		return ""
	}
	return " (not used: " + strings.Join(ids.skipped, "; ") + ")"
}

// Close lets go of the agent once the login is over.
func (ids *identities) Close() {
	if ids.agent != nil {
		ids.agent.Close()
	}
}
