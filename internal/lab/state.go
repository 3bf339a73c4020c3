package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dsrlab/dsrlab/internal/fileio"
	"github.com/dsrlab/dsrlab/topology"
)

// stateRoot holds one directory per lab with the resolved topology it was
// brought up from, so inspect and verify can compare the running lab with
// what it should be even after the topology file changed. Overridable for
// tests that must not share the host's state.
func stateRoot() string { return dirFromEnv("DSRLAB_STATE_DIR", "/var/lib/dsrlab/labs") }

// dirFromEnv is the directory the environment variable env names (tests
// point dsrlab's directories elsewhere with them), else def.
func dirFromEnv(env, def string) string {
	if d := os.Getenv(env); d != "" {
		return d
	}
	return def
}

// labDir is the lab's state directory: its recorded topology, and the
// controller's health.json and events.
func labDir(lab string) string { return filepath.Join(stateRoot(), lab) }

func stateFile(lab string) string {
	return filepath.Join(labDir(lab), "topology.yaml")
}

// saveState records the resolved topology, replacing the record in one
// rename so a crash leaves the old record or the new one.
func saveState(t *topology.Topology) error {
	data, err := t.Resolved()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(stateFile(t.Name)), 0o755); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	tmp := stateFile(t.Name) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(tmp, stateFile(t.Name)); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// Lock takes the lab's lock for as long as the returned function is not
// called: two dsrlab processes changing one lab (its containers, its
// balancer's maps) at once would undo each other's work. It fails, naming
// the lab, if another process holds it for longer than lockWait (the
// controller takes it for a moment to write weights). The lock file goes
// once the lab is down: the state directory keeps nothing of a lab that
// is not up.
func Lock(lab string) (unlock func(), err error) {
	deadline := time.Now().Add(lockWait)
	for {
		unlock, err := tryLock(lab)
		if err != nil || unlock != nil {
			return unlock, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("another dsrlab process is working on lab %q; wait for it to finish", lab)
		}
		time.Sleep(lockWait / 50)
	}
}

// lockWait is how long Lock waits for another holder: longer than the
// controller holds the lock, far shorter than any command that changes a
// lab.
const lockWait = time.Second

// tryLock is Lock without waiting: nil, nil when another process holds
// the lock.
func tryLock(lab string) (unlock func(), err error) {
	if err := topology.ValidLabName(lab); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(stateRoot(), 0o755); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	// The lock file sits beside the lab's directory, which down removes.
	path := filepath.Join(stateRoot(), "."+lab+".lock")
	f, err := lockFile(path, false)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lock lab %q: %w", lab, err)
	}
	return func() {
		if recorded, err := Recorded(lab); err == nil && !recorded {
			os.Remove(path)
		}
		f.Close()
	}, nil
}

// lockFile takes an exclusive flock on the file at path, made if missing,
// waiting for it if block is set. Holders may remove the file before they
// let go (so that no lock file outlives its use): a lock then taken on the
// removed file is worthless, and is taken again on the file at path now.
func lockFile(path string, block bool) (*os.File, error) {
	how := syscall.LOCK_EX
	if !block {
		how |= syscall.LOCK_NB
	}
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), how); err != nil {
			f.Close()
			return nil, err
		}
		var held, now syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &held); err != nil {
			f.Close()
			return nil, err
		}
		err = syscall.Stat(path, &now)
		if err == nil && now.Ino == held.Ino && now.Dev == held.Dev {
			return f, nil
		}
		f.Close()
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			return nil, err
		}
	}
}

// LoadState returns the topology a running lab was brought up from, or
// os.ErrNotExist wrapped when there is none.
func LoadState(lab string) (*topology.Topology, error) {
	if err := topology.ValidLabName(lab); err != nil {
		return nil, err
	}
	data, err := fileio.ReadRegular(stateFile(lab), fileio.MaxText)
	if err != nil {
		return nil, fmt.Errorf("lab %q: no recorded topology: %w", lab, err)
	}
	return topology.Parse(data, stateFile(lab))
}

// Recorded tells whether anything of the lab is recorded: up records the
// lab's hosts before it creates anything, and down and a failed up of a
// new lab remove the record once nothing of the lab is left. A lab without
// one has nothing on any engine.
func Recorded(lab string) (bool, error) {
	if err := topology.ValidLabName(lab); err != nil {
		return false, err
	}
	_, err := os.Stat(filepath.Dir(stateFile(lab)))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state: %w", err)
	}
	return true, nil
}

func removeState(lab string) error {
	if err := os.RemoveAll(filepath.Dir(stateFile(lab))); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return removePins(lab)
}

// wiringDiff names the first difference between two topologies in anything
// but the reals and weights of their VIPs, "" if there is none. Those are
// the only changes Up applies to a running lab in place (through the
// balancer's maps); anything else needs the lab rebuilt.
func wiringDiff(old, new *topology.Topology) string {
	a, b := wiring(old), wiring(new)
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("was %q, now %q", a[i], b[i])
		}
	}
	switch {
	case len(a) > len(b):
		return fmt.Sprintf("%q is gone", a[len(b)])
	case len(b) > len(a):
		return fmt.Sprintf("%q is new", b[len(a)])
	}
	return ""
}

// wiring lists a topology's facts that a running lab is built from, one
// line per node, interface and VIP. fmt prints maps in key order, so the
// lines are deterministic.
func wiring(t *topology.Topology) []string {
	lines := []string{"prefix " + t.Prefix}
	for _, n := range t.Nodes {
		// A program's file, name and maps change in place (up replaces
		// the program); where one goes is wiring.
		program := "-"
		if n.Program != nil {
			program = n.Program.Interface.Name
		}
		// The speaker's configuration is its container's command.
		speaker := "-"
		if runsSpeaker(n) {
			speaker = strings.Join(bgpCommand(t, n), " ")
		}
		lines = append(lines, fmt.Sprintf("node %s kind=%s image=%s cmd=%q env=%v exec=%q gateway=%v gateway6=%v routes=%v sysctls=%v xdp=%s decap=%s program-on=%s routing=%s speaker=%s",
			n.Name, n.Kind, n.Image, n.Cmd, n.Env, n.Exec, n.Gateway, n.Gateway6, n.Routes, n.Sysctls, n.XDP, n.Decap, program, n.Routing, speaker))
		for _, i := range n.Interfaces {
			lines = append(lines, fmt.Sprintf("interface %s addr=%v addr6=%v mac=%s mtu=%d peer=%s", i, i.Addr, i.Addr6, i.MAC, i.MTU, i.Peer))
		}
	}
	for _, v := range t.VIPs {
		lines = append(lines, fmt.Sprintf("vip %s mode=%s service=%s lb=%s", v, v.Mode, v.Service, v.LBNames()))
	}
	return lines
}
