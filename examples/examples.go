// Package examples holds the XDP programs dsrlab ships as starting points
// for a user's own balancer, each a directory with its C source, its lab
// and a README, embedded so that `dsrlab example` can write one out
// wherever the binary is.
package examples

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

//go:embed xdp-lb-minimal xdp-lb-hash
var files embed.FS

// Names lists the examples.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// Summary is what an example is, from the title of its README
// ("# NAME: what it is").
func Summary(name string) string {
	data, err := files.ReadFile(name + "/README.md")
	if err != nil {
		return ""
	}
	title, _, _ := strings.Cut(string(data), "\n")
	_, what, _ := strings.Cut(title, ": ")
	return what
}

// Files lists an example's files, by name.
func Files(name string) ([]string, error) {
	if !slices.Contains(Names(), name) {
		return nil, fmt.Errorf("no example %q; there are: %s", name, strings.Join(Names(), ", "))
	}
	entries, err := fs.ReadDir(files, name)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out, nil
}

// Write puts an example's files into dir, which it creates if need be. It
// overwrites nothing: a file of the same name there is an error, and then
// nothing is written (nor is anything left of a write that failed).
func Write(name, dir string) (err error) {
	names, err := Files(name)
	if err != nil {
		return err
	}
	if err := usableDir(dir); err != nil {
		return err
	}
	var taken []string
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			taken = append(taken, n)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if len(taken) > 0 {
		return fmt.Errorf("%s already has %s: dsrlab example overwrites nothing; choose another directory", dir, strings.Join(taken, ", "))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var written []string
	defer func() {
		if err != nil {
			for _, path := range written {
				os.Remove(path)
			}
		}
	}()
	for _, n := range names {
		data, err := files.ReadFile(name + "/" + n)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, n)
		// O_EXCL: a file that appeared since the check is not overwritten.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		written = append(written, path)
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// usableDir refuses a DIR that cannot hold the example, in words: a file
// (which would fail as "not a directory" on a path inside it), or a
// symbolic link to nothing (which MkdirAll would report as "file exists").
// A directory that is not there yet is made.
func usableDir(dir string) error {
	info, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(dir)
		if info, err = os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s is a symbolic link to %s, which does not exist: create that directory, or choose another", dir, target)
		} else if err != nil {
			return err
		}
	}
	if !info.IsDir() {
		return fmt.Errorf("%s is a file, not a directory: choose a directory to write the example into", dir)
	}
	return nil
}
