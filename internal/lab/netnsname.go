package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dsrlab/dsrlab/internal/netconf"
)

// netnsDir is where `ip netns` looks for named namespaces. Like
// containerlab, up names each container's namespace there, so a user's own
// tools work in it: `ip netns exec client tcpdump -i eth0`. Overridable for
// tests: the down of a fake lab took the name of a real lab's container of
// the same name, which that lab's controller finds its katran by.
func netnsDir() string { return dirFromEnv("DSRLAB_NETNS_DIR", "/run/netns") }

// nameNamespace makes /run/netns/CONTAINER a symbolic link to the
// namespace's /proc file. A link, not a bind mount: it does not keep the
// namespace alive after the container is gone, so a lab removed behind
// dsrlab's back leaks nothing. The container's name is the lab's (preflight
// made sure), so a link of that name to a process's namespace is the lab's
// too, left by an earlier run; anything else there (a namespace someone
// made with `ip netns add`) is left alone.
func nameNamespace(container string, ns *netconf.Namespace) error {
	if ns.Path() == "" {
		return nil // a namespace known only by its handle (the fake runtime)
	}
	if err := os.MkdirAll(netnsDir(), 0o755); err != nil {
		return err
	}
	link := filepath.Join(netnsDir(), container)
	switch target, err := os.Readlink(link); {
	case err == nil && target == ns.Path():
		return nil
	case err == nil && ownLink(target):
		// The container was restarted: its init has another PID.
		if err := os.Remove(link); err != nil {
			return err
		}
	case err == nil || !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s exists and is not dsrlab's; `ip netns exec %s` will not reach the container", link, container)
	}
	return os.Symlink(ns.Path(), link)
}

// unnameNamespace removes the name up gave a container's namespace, and
// nothing else of that name.
func unnameNamespace(container string) {
	link := filepath.Join(netnsDir(), container)
	if target, err := os.Readlink(link); err == nil && ownLink(target) {
		os.Remove(link)
	}
}

// unnameGone removes the name of a container that is gone already
// (removed behind dsrlab's back), but only while the link leads nowhere:
// once its PID is reused it would lead into some other process's
// namespace, and whose that is cannot be told.
func unnameGone(container string) {
	link := filepath.Join(netnsDir(), container)
	if target, err := os.Readlink(link); err == nil && ownLink(target) {
		if _, err := os.Stat(link); errors.Is(err, fs.ErrNotExist) {
			os.Remove(link)
		}
	}
}

// ownLink tells a link up made (to a process's namespace file) from
// anything else under /run/netns.
func ownLink(target string) bool {
	return strings.HasPrefix(target, "/proc/") && strings.HasSuffix(target, "/ns/net")
}
