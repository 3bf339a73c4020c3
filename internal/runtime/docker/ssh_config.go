package docker

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"
)

// systemSSHConfig is read after the user's ~/.ssh/config, as OpenSSH
// does; tests point it elsewhere.
var systemSSHConfig = "/etc/ssh/ssh_config"

// hostConfig is what the ssh_config files say about one host, for the
// keywords that decide where dsrlab connects and how it logs in. An
// engine address written for `docker -H ssh://alias` works the same here.
type hostConfig struct {
	hostName, user string
	port           int
	identityFiles  []string
	knownHosts     []string // UserKnownHostsFile
}

// sshConfig is one parsed file, named in errors.
type sshConfig struct {
	path string
	cfg  *ssh_config.Config
}

// readHostConfig looks alias up in the user's and the system's files; the
// first value found for a keyword wins, as in OpenSSH. Missing files say
// nothing.
func readHostConfig(alias string) (hostConfig, error) {
	var files []sshConfig
	paths := []string{systemSSHConfig}
	if home, err := os.UserHomeDir(); err == nil {
		paths = append([]string{filepath.Join(home, ".ssh", "config")}, paths...)
	}
	for _, path := range paths {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return hostConfig{}, fmt.Errorf("read SSH client configuration: %w", err)
		}
		cfg, err := ssh_config.Decode(f)
		f.Close()
		if err != nil {
			return hostConfig{}, fmt.Errorf("%s: %w", path, err)
		}
		files = append(files, sshConfig{path, cfg})
	}
	var hc hostConfig
	var err error
	first := func(key string) (value, path string) {
		for _, f := range files {
			v, e := f.cfg.Get(alias, key)
			if e != nil && err == nil {
				err = fmt.Errorf("%s: %s: %w", f.path, key, e)
			}
			if v != "" {
				return v, f.path
			}
		}
		return "", ""
	}
	for _, key := range []string{"ProxyJump", "ProxyCommand"} {
		if v, path := first(key); v != "" && !strings.EqualFold(v, "none") {
			return hostConfig{}, fmt.Errorf("%s gives %s %q for %s: dsrlab connects to SSH servers directly and does not follow it; "+
				"give the engine an address it can reach, or forward one (ssh -L) and use it", path, key, v, alias)
		}
	}
	hc.hostName, _ = first("HostName")
	hc.user, _ = first("User")
	if v, path := first("Port"); v != "" {
		if hc.port, err = strconv.Atoi(v); err != nil || hc.port < 1 || hc.port > 65535 {
			return hostConfig{}, fmt.Errorf("%s: Port %q for %s is not a port number", path, v, alias)
		}
	}
	// IdentityFile and UserKnownHostsFile accumulate over files and blocks.
	for _, f := range files {
		ids, e := f.cfg.GetAll(alias, "IdentityFile")
		if e != nil && err == nil {
			err = fmt.Errorf("%s: IdentityFile: %w", f.path, e)
		}
		hc.identityFiles = append(hc.identityFiles, ids...)
	}
	if v, _ := first("UserKnownHostsFile"); v != "" {
		hc.knownHosts = strings.Fields(v)
	}
	return hc, err
}

// expandPath completes a file name of ssh_config as OpenSSH does: a
// leading ~ is the home directory, and the tokens %d (home), %u (local
// user), %h (the host connected to), %r (the remote user) and %% stand
// for what they name.
func expandPath(p, home, localUser, host, remoteUser string) (string, error) {
	if p == "~" || strings.HasPrefix(p, "~/") {
		p = home + p[1:]
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		if i++; i == len(p) {
			return "", fmt.Errorf("%q ends in a lone %%", p)
		}
		switch p[i] {
		case '%':
			b.WriteByte('%')
		case 'd':
			b.WriteString(home)
		case 'u':
			b.WriteString(localUser)
		case 'h':
			b.WriteString(host)
		case 'r':
			b.WriteString(remoteUser)
		default:
			return "", fmt.Errorf("%q: dsrlab does not know the token %%%c (it knows %%d %%u %%h %%r %%%%)", p, p[i])
		}
	}
	return b.String(), nil
}
