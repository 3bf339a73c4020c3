// Package fileio reads the files a user names (topologies, objects, sources,
// keys, case files) so that no such file can hang dsrlab or exhaust memory.
package fileio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Size caps for the kinds of file dsrlab reads. A topology of 10k nodes is
// well under a megabyte; Katran's balancer object is a few hundred KiB.
const (
	MaxText   = 16 << 20  // topologies, case files, C sources, keys, configs
	MaxObject = 256 << 20 // compiled BPF objects
)

// ErrTooBig is wrapped by ReadRegular when a file is over its cap.
var ErrTooBig = errors.New("file too big")

// ReadRegular reads a regular file of at most max bytes. The open is
// non-blocking so that a FIFO or a device never blocks the caller: anything
// that is not a regular file (FIFO, /dev/zero, a directory) is refused before
// a byte is read, and a file that grows past max while being read is refused
// too rather than read to the end.
func ReadRegular(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkRegular(path, info); err != nil {
		return nil, err
	}
	if info.Size() > max {
		return nil, fmt.Errorf("%s: %w: %d bytes, at most %d", path, ErrTooBig, info.Size(), max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooBig, max)
	}
	return data, nil
}

// CheckRegular says whether path (followed through symlinks) is a regular
// file, for callers that hand the path to another program (clang) instead of
// reading it.
func CheckRegular(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return checkRegular(path, info)
}

func checkRegular(path string, info fs.FileInfo) error {
	if info.Mode().IsRegular() {
		return nil
	}
	what := "not a regular file"
	switch m := info.Mode(); {
	case m.IsDir():
		what = "a directory, not a file"
	case m&fs.ModeNamedPipe != 0:
		what = "a FIFO, not a regular file"
	case m&fs.ModeDevice != 0 || m&fs.ModeCharDevice != 0:
		what = "a device, not a regular file"
	case m&fs.ModeSocket != 0:
		what = "a socket, not a regular file"
	}
	return fmt.Errorf("%s: %s", path, what)
}
