// Package image builds dsrlab's default node image locally. There may be no
// registry to pull from, so the image is assembled from what the host has:
// Debian's static busybox (sh, ip, nc, ...) and dsrlab's own static binary,
// which reals run as their echo service.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"

	"github.com/dsrlab/dsrlab/internal/runtime"
)

// BinaryPath is where dsrlab's own binary sits inside the image.
const BinaryPath = "/usr/local/bin/dsrlab"

// DigestLabel records what the image was built from, so an image left by an
// older dsrlab (whose echo service may differ) is rebuilt, not trusted.
const DigestLabel = "dsrlab.image.digest"

// busyboxCandidates are where Debian's busybox-static puts the binary.
var busyboxCandidates = []string{"/bin/busybox", "/usr/bin/busybox"}

// Ensure builds tag unless an image built from the same inputs exists.
// It reports whether it built.
func Ensure(ctx context.Context, rt runtime.ImageBuilder, tag string, force bool) (bool, error) {
	in, err := theInputs()
	if err != nil {
		return false, err
	}
	old, err := rt.Image(ctx, tag)
	switch {
	case err == nil && old.Labels[DigestLabel] == in.digest && !force:
		return false, nil
	case err != nil && !errors.Is(err, runtime.ErrNotFound):
		return false, err
	}
	if err := in.complete(); err != nil {
		return false, err
	}
	buildCtx, err := in.buildContext()
	if err != nil {
		return false, err
	}
	if err := rt.BuildImage(ctx, tag, bytes.NewReader(buildCtx)); err != nil {
		return false, err
	}
	// The image the tag moved away from would stay behind, untagged, at
	// every rebuild. Only an image dsrlab built is removed, and only if no
	// container still uses it (the engine refuses otherwise).
	if old != nil && old.Labels[DigestLabel] != "" {
		if now, err := rt.Image(ctx, tag); err == nil && now.ID != old.ID {
			_ = rt.RemoveImage(ctx, old.ID)
		}
	}
	return true, nil
}

// Digest is what the node image this dsrlab builds is labelled with
// (DigestLabel). It changes with dsrlab's own binary: a container of an
// image another dsrlab built runs that dsrlab, not this one.
func Digest() (string, error) {
	in, err := theInputs()
	if err != nil {
		return "", err
	}
	return in.digest, nil
}

// theInputs are read once a process: every engine of a lab gets the same.
var theInputs = sync.OnceValues(collectInputs)

// inputs are what the image is built from. The digest is taken on every
// up; what only a build needs (dsrlab's own bytes, busybox's applets) is
// read by complete.
type inputs struct {
	bbPath, selfPath string
	busybox          []byte
	digest           string

	mu      sync.Mutex
	applets []string
	self    []byte
}

func collectInputs() (*inputs, error) {
	bbPath := ""
	for _, p := range busyboxCandidates {
		if _, err := os.Stat(p); err == nil {
			bbPath = p
			break
		}
	}
	if bbPath == "" {
		return nil, errors.New("building the node image needs a static busybox, and none was found at " +
			strings.Join(busyboxCandidates, " or ") + ": install it with `apt-get install busybox-static`")
	}
	bb, err := readStatic(bbPath, "install Debian's busybox-static (`apt-get install busybox-static`), not the dynamic busybox")
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find dsrlab's own binary: %w", err)
	}
	f, err := staticELF(self, "build dsrlab with CGO_ENABLED=0 (`make build` does)")
	if err != nil {
		return nil, err
	}
	id := goBuildID(f)
	f.Close()
	in := &inputs{bbPath: bbPath, selfPath: self, busybox: bb}
	h := sha256.New()
	h.Write([]byte(dockerfile("")))
	h.Write(bb)
	if id != "" {
		fmt.Fprintf(h, "go build ID %s", id)
	} else {
		// Built without one (-buildid=): the bytes themselves.
		if in.self, err = os.ReadFile(self); err != nil {
			return nil, err
		}
		h.Write(in.self)
	}
	in.digest = hex.EncodeToString(h.Sum(nil))
	return in, nil
}

// complete reads what only a build needs.
func (in *inputs) complete() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.self == nil {
		self, err := os.ReadFile(in.selfPath)
		if err != nil {
			return fmt.Errorf("read dsrlab's own binary: %w", err)
		}
		in.self = self
	}
	if in.applets == nil {
		out, err := exec.Command(in.bbPath, "--list").Output()
		if err != nil {
			return fmt.Errorf("list busybox applets: %w", err)
		}
		in.applets = strings.Fields(string(out))
	}
	return nil
}

// goBuildID is the Go build ID of an executable, "" if it has none. Its
// last part is the hash the go command takes of the linked binary's
// content: it names dsrlab's binary as well as a hash of its 40 MB
// would, which took a tenth of the reference lab's up.
func goBuildID(f *elf.File) string {
	s := f.Section(".note.go.buildid")
	if s == nil {
		return ""
	}
	data, err := s.Data()
	if err != nil || len(data) < 16 {
		return ""
	}
	// One ELF note: name size, description size, type, name, description.
	namesz, descsz, typ := f.ByteOrder.Uint32(data), f.ByteOrder.Uint32(data[4:]), f.ByteOrder.Uint32(data[8:])
	const goBuildIDNote = 4
	if namesz != 4 || typ != goBuildIDNote || string(data[12:16]) != "Go\x00\x00" || uint64(len(data)) < 16+uint64(descsz) {
		return ""
	}
	if id := string(data[16 : 16+descsz]); hashedBuildID(id) {
		return id
	}
	return ""
}

// hashedBuildID tells a build ID the go command made, hashes of the
// build's inputs and output ("action/content", and more parts), from one
// given by hand (-ldflags=-buildid=redacted, as some build systems pass),
// which would name every version of dsrlab alike.
func hashedBuildID(id string) bool {
	parts := strings.Split(id, "/")
	return len(parts) >= 2 && !slices.Contains(parts, "")
}

// staticELF opens an executable that must run in an image with no libc.
func staticELF(path, hint string) (*elf.File, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			f.Close()
			return nil, fmt.Errorf("%s is dynamically linked and cannot run in the scratch-based node image: %s", path, hint)
		}
	}
	return f, nil
}

// readStatic reads an executable that must run in an image with no libc.
func readStatic(path, hint string) ([]byte, error) {
	f, err := staticELF(path, hint)
	if err != nil {
		return nil, err
	}
	f.Close()
	return os.ReadFile(path)
}

func dockerfile(digest string) string {
	return "FROM scratch\nCOPY rootfs/ /\nLABEL " + DigestLabel + "=" + digest + "\nCMD [\"/bin/sh\"]\n"
}

// buildContext is a tar stream with the Dockerfile and the root file system
// to copy. Applets are symlinks to busybox, made here rather than by a RUN
// step, so the build starts no container.
func (in *inputs) buildContext() ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) error {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	entries := []struct {
		h    *tar.Header
		body []byte
	}{
		{&tar.Header{Name: "Dockerfile", Mode: 0o644, Typeflag: tar.TypeReg}, []byte(dockerfile(in.digest))},
		{&tar.Header{Name: "rootfs/bin/", Mode: 0o755, Typeflag: tar.TypeDir}, nil},
		{&tar.Header{Name: "rootfs/bin/busybox", Mode: 0o755, Typeflag: tar.TypeReg}, in.busybox},
		{&tar.Header{Name: "rootfs/tmp/", Mode: 0o1777, Typeflag: tar.TypeDir}, nil},
		{&tar.Header{Name: "rootfs/usr/local/bin/", Mode: 0o755, Typeflag: tar.TypeDir}, nil},
		{&tar.Header{Name: "rootfs" + BinaryPath, Mode: 0o755, Typeflag: tar.TypeReg}, in.self},
	}
	for _, e := range entries {
		if err := add(e.h, e.body); err != nil {
			return nil, err
		}
	}
	for _, a := range in.applets {
		if a == "busybox" || strings.Contains(a, "/") {
			continue
		}
		h := &tar.Header{Name: "rootfs/bin/" + a, Linkname: "busybox", Mode: 0o777, Typeflag: tar.TypeSymlink}
		if err := add(h, nil); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
