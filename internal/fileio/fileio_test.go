package fileio

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadRegular(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 1025), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(small, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, want string // want: the data, or a part of the error
		ok         bool
	}{
		{small, "hello", true},
		{link, "hello", true},
		{big, "file too big", false},
		{fifo, "a FIFO", false}, // would block forever if opened for reading without O_NONBLOCK
		{dir, "a directory", false},
		{"/dev/zero", "a device", false}, // endless: would exhaust memory
		{filepath.Join(dir, "missing"), "no such file", false},
	}
	for _, tt := range tests {
		data, err := ReadRegular(tt.path, 1024)
		if tt.ok {
			if err != nil || string(data) != tt.want {
				t.Errorf("ReadRegular(%s) = %q, %v; want %q", tt.path, data, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ReadRegular(%s) error = %v; want it to say %q", tt.path, err, tt.want)
		}
	}
	if _, err := ReadRegular(big, 1024); !errors.Is(err, ErrTooBig) {
		t.Errorf("a file over the cap: %v, want ErrTooBig", err)
	}
	if err := CheckRegular(fifo); err == nil {
		t.Error("CheckRegular accepted a FIFO")
	}
}
