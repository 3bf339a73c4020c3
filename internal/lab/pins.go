package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// pinRoot holds the pins of users' program arrays, by lab and node: a
// bpffs of dsrlab's own (each bpffs mount is an instance of its own),
// mounted on first use. On another host it is the agent's, inside its
// container, and goes with it. dsrlab pins nothing else: its own programs
// have no program arrays, and other maps live as long as their programs.
func pinRoot() string { return dirFromEnv("DSRLAB_PIN_DIR", "/run/dsrlab/bpf") }

// pinDir makes the directory of pins sub of a lab (a node's, or a TC
// program's), mounting the bpffs under a lock so that two dsrlabs do not
// stack two mounts there (the second would hide the first's pins).
func pinDir(lab string, sub ...string) (string, error) {
	root := pinRoot()
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", err
	}
	lock, err := lockFile(root+".lock", true)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return "", fmt.Errorf("%s: %w", root, err)
	}
	if st.Type != unix.BPF_FS_MAGIC {
		if err := unix.Mount("bpf", root, "bpf", 0, "mode=0700"); err != nil {
			return "", fmt.Errorf("mount a bpffs on %s for program arrays: %w", root, err)
		}
		// Said in the lock file, so that the last down unmounts only
		// what dsrlab mounted (never a bpffs the user pointed it at).
		if err := lock.Truncate(0); err == nil {
			_, err = lock.WriteAt([]byte(mountedMark), 0)
		}
	}
	dir := filepath.Join(append([]string{root, lab}, sub...)...)
	return dir, os.MkdirAll(dir, 0o700)
}

// mountedMark is the lock file's content while the bpffs on the pin root
// is the one dsrlab mounted.
const mountedMark = "dsrlab mounted this bpffs\n"

// releasePinRoot unmounts the pin root's bpffs and removes it and its
// lock once no lab has pins left there: a machine whose labs are all down
// keeps nothing of dsrlab's mounted.
func releasePinRoot() error {
	root := pinRoot()
	if _, err := os.Stat(root + ".lock"); errors.Is(err, fs.ErrNotExist) {
		return nil // never used
	}
	lock, err := lockFile(root+".lock", true)
	if err != nil {
		return fmt.Errorf("pins: %w", err)
	}
	defer lock.Close()
	entries, err := os.ReadDir(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("pins: %w", err)
	case slices.ContainsFunc(entries, fs.DirEntry.IsDir):
		return nil // another lab's pins
	default:
		// Files at the top are the kernel's own (maps.debug,
		// progs.debug, where it has them): each lab's pins are in a
		// directory of its own.
		mark := make([]byte, len(mountedMark))
		if n, _ := lock.ReadAt(mark, 0); string(mark[:n]) == mountedMark {
			if err := unix.Unmount(root, 0); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("pins: unmount %s: %w", root, err)
			}
			if err := os.Remove(root); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("pins: %w", err)
			}
		} else {
			// A directory in a bpffs of the user's: gone if empty.
			os.Remove(root)
		}
	}
	// Removed while held: whoever waits for this lock takes it again on
	// the file made next (see lockFile).
	return os.Remove(root + ".lock")
}

// pinned reports whether every one of names is pinned for the node, and
// each pin is one of running's maps: a pin missing (a restarted agent) or
// left from another load (a pin step that failed halfway) means the
// running program's arrays empty out once nothing holds them.
func pinned(lab, node string, names []string, running *ebpf.Program) bool {
	if len(names) == 0 {
		return true
	}
	info, err := running.Info()
	if err != nil {
		return false
	}
	ids, ok := info.MapIDs()
	if !ok {
		return false
	}
	for _, name := range names {
		m, err := ebpf.LoadPinnedMap(filepath.Join(pinRoot(), lab, node, name), nil)
		if err != nil {
			return false
		}
		mi, err := m.Info()
		m.Close()
		if err != nil {
			return false
		}
		if id, ok := mi.ID(); !ok || !slices.Contains(ids, id) {
			return false
		}
	}
	return true
}

// removePins lets go of a lab's program arrays (their programs are gone
// or going with the lab's containers).
func removePins(lab string) error {
	if err := removeAllPins(filepath.Join(pinRoot(), lab)); err != nil {
		return err
	}
	return releasePinRoot()
}

// removeNodePins lets go of a node's program arrays.
func removeNodePins(lab, node string) error {
	if err := removeAllPins(filepath.Join(pinRoot(), lab, node)); err != nil {
		return err
	}
	// The lab's directory goes with its last node's pins; another node's
	// keep it.
	os.Remove(filepath.Join(pinRoot(), lab))
	return releasePinRoot()
}

func removeAllPins(dir string) error {
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pins: %w", err)
	}
	return nil
}
