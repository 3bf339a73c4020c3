package docker

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"

	"github.com/dsrlab/dsrlab/internal/fileio"
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
	// identityFiles is IdentityFile: nil when not given.
	identityFiles []string
	// knownHosts is UserKnownHostsFile: nil when not given, empty for
	// "none".
	knownHosts []string
	// unread names the files that could not be read, and why: their
	// settings are not followed, which an error about the connection
	// then says.
	unread []string
}

// sshConfig is one parsed file, named in errors.
type sshConfig struct {
	path string
	cfg  *ssh_config.Config
}

// readHostConfig looks alias up in the user's and the system's files; the
// first value found for a keyword wins, as in OpenSSH. Missing files say
// nothing. A file the parser cannot read (a Match criterion it does not
// know, as Fedora's `Match final all`) is left out rather than failing
// every engine; only settings that are wrong for this host are errors.
func readHostConfig(alias string) (hostConfig, error) {
	var hc hostConfig
	var files []sshConfig
	paths := []string{systemSSHConfig}
	if home, err := os.UserHomeDir(); err == nil {
		paths = append([]string{filepath.Join(home, ".ssh", "config")}, paths...)
	}
	for _, path := range paths {
		data, err := fileio.ReadRegular(path, fileio.MaxText)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		var cfg *ssh_config.Config
		if err == nil {
			err = checkIncludes(data, 0)
		}
		if err == nil {
			cfg, err = ssh_config.DecodeBytes(data)
		}
		if err != nil {
			hc.unread = append(hc.unread, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		files = append(files, sshConfig{path, cfg})
	}
	first := func(key string) (value, path string) {
		for _, f := range files {
			if v, err := f.cfg.Get(alias, key); err == nil && v != "" {
				return v, f.path
			}
		}
		return "", ""
	}
	// Of ProxyJump and ProxyCommand, whichever comes first wins in
	// OpenSSH; "none" of either is how a block turns off a proxy that a
	// wider one sets.
	jump, jumpFrom := first("ProxyJump")
	command, commandFrom := first("ProxyCommand")
	if !strings.EqualFold(jump, "none") && !strings.EqualFold(command, "none") {
		for _, p := range []struct{ key, value, from string }{{"ProxyJump", jump, jumpFrom}, {"ProxyCommand", command, commandFrom}} {
			if p.value != "" {
				return hostConfig{}, fmt.Errorf("%s gives %s %q for %s: dsrlab connects to SSH servers directly and does not follow it; "+
					"give the engine an address it can reach, or forward one (ssh -L) and use it", p.from, p.key, p.value, alias)
			}
		}
	}
	hc.hostName, _ = first("HostName")
	hc.user, _ = first("User")
	if v, path := first("Port"); v != "" {
		port, err := strconv.Atoi(v)
		if err != nil || port < 1 || port > 65535 {
			return hostConfig{}, fmt.Errorf("%s: Port %q for %s is not a port number", path, v, alias)
		}
		hc.port = port
	}
	// IdentityFile accumulates over files and blocks; "none" adds none,
	// but, given at all, it replaces the default files.
	for _, f := range files {
		ids, _ := f.cfg.GetAll(alias, "IdentityFile")
		for _, id := range ids {
			if hc.identityFiles == nil {
				hc.identityFiles = []string{}
			}
			if !strings.EqualFold(id, "none") {
				hc.identityFiles = append(hc.identityFiles, id)
			}
		}
	}
	if v, _ := first("UserKnownHostsFile"); v != "" {
		hc.knownHosts = []string{}
		if !strings.EqualFold(v, "none") {
			hc.knownHosts = strings.Fields(v)
		}
	}
	return hc, nil
}

// tokens are what ssh_config's % tokens in file names stand for.
type tokens struct {
	home, localUser, uid string
	localHost            string // %l
	host, alias          string // %h (after HostName), %n (as written)
	port                 string
	remoteUser           string
}

// maxIncludeDepth is how deep the parser follows Include lines.
const maxIncludeDepth = 5

// checkIncludes checks that the files the Include lines of an ssh_config
// name, found where the parser will look (ssh_config.NewInclude), are
// regular files of bounded size: the parser reads them itself, and would
// read a device without end or wait on a FIFO for ever.
func checkIncludes(data []byte, depth int) error {
	if depth > maxIncludeDepth {
		return nil // the parser refuses it
	}
	for _, line := range strings.Split(string(data), "\n") {
		key, value, _ := strings.Cut(strings.TrimSpace(line), " ")
		if k, v, eq := strings.Cut(key, "="); eq {
			key, value = k, v+" "+value
		}
		if !strings.EqualFold(key, "Include") {
			continue
		}
		for _, pattern := range strings.Fields(strings.TrimLeft(strings.TrimSpace(value), "= ")) {
			path := pattern
			switch {
			case filepath.IsAbs(pattern):
			case strings.HasPrefix(pattern, "~/"):
				path = filepath.Join(includeHome(), pattern[2:])
			default:
				path = filepath.Join(includeHome(), ".ssh", pattern)
			}
			matches, _ := filepath.Glob(path) // a bad pattern is the parser's to report
			for _, m := range matches {
				inc, err := fileio.ReadRegular(m, fileio.MaxText)
				if err != nil {
					return fmt.Errorf("Include %s: %w", pattern, err)
				}
				if err := checkIncludes(inc, depth+1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// includeHome is the home directory the parser resolves Include paths in.
func includeHome() string {
	if u, err := user.Current(); err == nil {
		return u.HomeDir
	}
	return os.Getenv("HOME")
}

// expandPath completes a file name of ssh_config as OpenSSH does: a
// leading ~ is the home directory, and %d (home), %u (local user), %i
// (its uid), %l (this host's name), %h (the host connected to), %n (the
// host as the address gives it), %p (port), %r (remote user), %C (a hash
// of %l%h%p%r) and %% stand for what they name.
func expandPath(p string, t tokens) (string, error) {
	if p == "~" || strings.HasPrefix(p, "~/") {
		p = t.home + p[1:]
	}
	sum := sha1.Sum([]byte(t.localHost + t.host + t.port + t.remoteUser))
	values := map[byte]string{'%': "%", 'd': t.home, 'u': t.localUser, 'i': t.uid, 'l': t.localHost,
		'h': t.host, 'n': t.alias, 'p': t.port, 'r': t.remoteUser, 'C': hex.EncodeToString(sum[:])}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		if i++; i == len(p) {
			return "", fmt.Errorf("%q ends in a lone %%", p)
		}
		v, ok := values[p[i]]
		if !ok {
			return "", fmt.Errorf("%q: dsrlab does not know the token %%%c (it knows %%d %%u %%i %%l %%h %%n %%p %%r %%C %%%%)", p, p[i])
		}
		b.WriteString(v)
	}
	return b.String(), nil
}
