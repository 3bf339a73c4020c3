// Package netconf configures network namespaces (in practice, containers'):
// veth links, addresses, routes, offloads, XDP attachment and IPIP devices.
// Everything goes through netlink or ioctls, never through the ip or ethtool
// binaries, so it works whatever the container image holds.
package netconf

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Namespace is an open network namespace.
type Namespace struct {
	name string // for messages only
	path string // a file naming it, if it has one: "/proc/PID/ns/net"
	ns   netns.NsHandle
	h    *netlink.Handle
	// own: the process's own namespace (Current), where Do needs no
	// setns, which a process without CAP_SYS_ADMIN (a BGP speaker in a
	// node container) may not call.
	own bool
}

// Path is a file that names the namespace while it lives
// (/proc/PID/ns/net of a container's init), or "" for one known only by
// its handle.
func (n *Namespace) Path() string { return n.path }

// ID names the namespace for as long as it lives (its nsfs device and
// inode): a path that names another namespace later, once a container's
// PID has been reused, has another ID.
func (n *Namespace) ID() string { return n.ns.UniqueId() }

// FromPID opens the network namespace of a process, typically a
// container's init; the handle stays valid even if the process exits.
func FromPID(pid int, name string) (*Namespace, error) {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return nil, fmt.Errorf("%s: open netns of pid %d: %w", name, pid, err)
	}
	// Configuring "a container" that turns out to be the host (a PID that
	// was reused, a container sharing the host's network) would rewrite the
	// host's own interfaces and routes.
	if self, err := netns.Get(); err == nil {
		same := ns.Equal(self)
		self.Close()
		if same {
			ns.Close()
			return nil, fmt.Errorf("%s: pid %d is in dsrlab's own network namespace, not a container's", name, pid)
		}
	}
	n, err := fromHandle(ns, name)
	if err != nil {
		return nil, err
	}
	n.path = fmt.Sprintf("/proc/%d/ns/net", pid)
	return n, nil
}

// FromPath opens the network namespace a file names (/proc/PID/ns/net),
// as dsrlab's agent does on another host.
func FromPath(path, name string) (*Namespace, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("%s: open netns %s: %w", name, path, err)
	}
	n, err := fromHandle(ns, name)
	if err != nil {
		return nil, err
	}
	n.path = path
	return n, nil
}

// New creates a fresh network namespace, with only its loopback, up. It is
// what a container with no network of its own starts with; it lives as long
// as a handle on it is open.
func New(name string) (*Namespace, error) {
	type result struct {
		ns  netns.NsHandle
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- result{err: fmt.Errorf("get current netns: %w", err)}
			return
		}
		defer orig.Close()
		ns, err := netns.New() // unshare: this thread is now inside it
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("%s: new netns: %w", name, err)}
			return
		}
		if err := netns.Set(orig); err != nil {
			// The thread stays locked and dies with the goroutine.
			ns.Close()
			done <- result{err: fmt.Errorf("restore netns: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		done <- result{ns: ns}
	}()
	r := <-done
	if r.err != nil {
		return nil, r.err
	}
	n, err := fromHandle(r.ns, name)
	if err != nil {
		return nil, err
	}
	lo, err := n.h.LinkByName("lo")
	if err == nil {
		err = n.h.LinkSetUp(lo)
	}
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("%s: set lo up: %w", name, err)
	}
	return n, nil
}

// Clone returns a second, independent handle on the same namespace.
func (n *Namespace) Clone() (*Namespace, error) {
	fd, err := unix.Dup(int(n.ns))
	if err != nil {
		return nil, fmt.Errorf("%s: dup netns handle: %w", n.name, err)
	}
	c, err := fromHandle(netns.NsHandle(fd), n.name)
	if err != nil {
		return nil, err
	}
	c.path = n.path
	return c, nil
}

// SetSysctl writes a net.* sysctl of the namespace ("net.ipv4.ip_forward"),
// as a container engine does when it creates a container.
func (n *Namespace) SetSysctl(key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	return n.Do(func() error {
		// /proc/sys/net shows the namespace of the thread that opens it.
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("%s: sysctl %s=%s: %w", n.name, key, value, err)
		}
		return nil
	})
}

func fromHandle(ns netns.NsHandle, name string) (*Namespace, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("%s: netlink handle: %w", name, err)
	}
	return &Namespace{name: name, ns: ns, h: h}, nil
}

// Close releases the handle; the namespace itself lives on.
func (n *Namespace) Close() {
	n.h.Close()
	n.ns.Close()
}

// Do runs fn on an OS thread that has entered the namespace. Sockets fn
// creates belong to the namespace for their whole life, which is how ioctls,
// dials and netlink calls without a Handle variant reach it.
func (n *Namespace) Do(fn func() error) error {
	if n.own {
		return fn()
	}
	errc := make(chan error, 1)
	// A fresh goroutine keeps the caller's thread out of it: if restoring the
	// original namespace fails, the locked thread is discarded when the
	// goroutine exits instead of leaking the wrong namespace to other code.
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(n.ns); err != nil {
			errc <- fmt.Errorf("%s: enter netns: %w", n.name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("restore netns: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Dial opens a connection from inside the namespace. The socket is created
// there, so the connection uses the namespace's addresses and routes for its
// whole life, whichever thread later serves it.
func (n *Namespace) Dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var err error
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: dial %s %s: %w", n.name, network, addr, err)
	}
	return c, nil
}

// FD is the namespace's file descriptor, for libraries that take one
// (nftables). It stays owned by the Namespace.
func (n *Namespace) FD() int { return int(n.ns) }
