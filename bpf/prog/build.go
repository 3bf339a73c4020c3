package prog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"github.com/dsrlab/dsrlab/internal/fileio"
)

// include/bpf holds the one vendored copy of libbpf's helper headers: users'
// programs get them from here, and dsrlab's own programs are compiled with
// it on their include path (include/update.sh refreshes them). include/gnu
// holds the empty stub that lets glibc's headers compile for the BPF target.
//
//go:embed include/bpf include/gnu
var headers embed.FS

// clangBinary is looked up in PATH at each Build, so that a PATH without clang
// is reported as such.
const clangBinary = "clang"

// compileFlags are what the issue promises users: the flags of the libbpf
// tutorials, so a program that compiles there compiles here unchanged.
var compileFlags = []string{"-O2", "-g", "-target", "bpf"}

// ErrNoClang is returned by Build when clang is not in PATH.
var ErrNoClang = errors.New("clang not found in PATH: install it with `apt-get install clang llvm` " +
	"(or scripts/install-deps.sh --clang), or give a compiled object with `object:` instead of `source:`")

// CompileError is clang's rejection of a source: Output holds its diagnostics
// verbatim (file:line:col: error: ...), which is what the user needs to see.
type CompileError struct {
	Source string
	Output string
	Err    error
}

func (e *CompileError) Error() string {
	out := strings.TrimRight(e.Output, "\n")
	if out == "" {
		return fmt.Sprintf("compile %s: %v", e.Source, e.Err)
	}
	return fmt.Sprintf("compile %s:\n%s", e.Source, out)
}

func (e *CompileError) Unwrap() error { return e.Err }

// Build compiles a libbpf-style C source for the BPF target, with the
// user's cflags after dsrlab's, and returns the path of the object,
// cacheDir/<hash>.o. The hash covers what the compiler sees (the
// preprocessed source, so an edited local header rebuilds too), the flags
// and clang's version; an object already in the cache is reused without
// compiling. Errors name the source, never the cache.
func Build(ctx context.Context, source string, cflags []string, cacheDir string) (string, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	if err := private(cacheDir); err != nil {
		return "", err
	}
	clang, err := exec.LookPath(clangBinary)
	if err != nil {
		return "", ErrNoClang
	}
	if err := checkSource(source); err != nil {
		return "", err
	}
	include, err := installHeaders(cacheDir)
	if err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	flags := slices.Concat(compileFlags, includeFlags(ctx, clang, include), cflags)
	// -x c: the source is C whatever its name says; without it clang
	// takes prog.txt for linker input and writes no object at all.
	in := []string{"-x", "c", source}

	pre, err := runClang(ctx, clang, source, slices.Concat(flags, []string{"-E"}, in)...)
	if err != nil {
		return "", err
	}
	version, err := runClang(ctx, clang, source, "--version")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, part := range [][]byte{version, []byte(strings.Join(flags, "\x00")), pre} {
		fmt.Fprintf(h, "%d\x00", len(part))
		h.Write(part)
	}
	object := filepath.Join(cacheDir, hex.EncodeToString(h.Sum(nil))+".o")
	if _, err := os.Stat(object); err == nil {
		return object, nil
	}

	// Compile from the source itself, not from the preprocessed text, so
	// diagnostics and BTF line info name the user's file and lines.
	tmp, err := os.CreateTemp(cacheDir, ".build-*.o")
	if err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if _, err := runClang(ctx, clang, source, slices.Concat(flags, []string{"-c", "-o", tmp.Name()}, in)...); err != nil {
		return "", err
	}
	// Only an object that opens is cached: the cache is trusted by name.
	if err := checkBuilt(source, tmp.Name()); err != nil {
		return "", err
	}
	// Rename so a concurrent or interrupted build never leaves a partial
	// object under the final name.
	if err := os.Rename(tmp.Name(), object); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	return object, nil
}

// checkBuilt checks clang's output before it enters the cache.
func checkBuilt(source, object string) error {
	data, err := fileio.ReadRegular(object, fileio.MaxObject)
	if err != nil {
		return fmt.Errorf("compile %s: %w", source, err)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("compile %s: clang wrote no BPF object: %w", source, err)
	}
	defer f.Close()
	if f.Section(".BTF") == nil {
		return fmt.Errorf("compile %s: the object has no BTF: the source defines no program or map (or a cflag turned -g off)", source)
	}
	return nil
}

// checkSource refuses what clang must not be handed: a directory, a FIFO
// (it would block), a device (/dev/zero never ends), or a file past the
// size of any source.
func checkSource(source string) error {
	if err := fileio.CheckRegular(source); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	fi, err := os.Stat(source)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if fi.Size() > fileio.MaxText {
		return fmt.Errorf("source: %s: %w: %d bytes, at most %d", source, fileio.ErrTooBig, fi.Size(), fileio.MaxText)
	}
	return nil
}

// private refuses a cache that someone else could write to: an object
// found there by its name is loaded into the kernel without compiling.
func private(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm()&0o022 != 0 || ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("cache %s is writable by others or not owned by this user: objects in it are loaded into the kernel; use a private directory (DSRLAB_CACHE_DIR)", dir)
	}
	return nil
}

// runClang returns clang's stdout, or a CompileError carrying its stderr.
func runClang(ctx context.Context, clang, source string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, clang, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, &CompileError{Source: source, Output: stderr.String(), Err: err}
	}
	return stdout.Bytes(), nil
}

// includeFlags adds the vendored libbpf headers and the multiarch directory
// holding asm/types.h: clang's BPF target searches /usr/include but not
// /usr/include/<triple>, and <linux/bpf.h> needs both.
func includeFlags(ctx context.Context, clang, include string) []string {
	flags := []string{"-I" + include}
	if dir := filepath.Join("/usr/include", multiarch(ctx, clang)); dirExists(dir) {
		flags = append(flags, "-idirafter", dir)
	}
	return flags
}

// multiarch asks clang for the host's Debian triple, falling back to the
// usual triple of the architecture Go was built for.
func multiarch(ctx context.Context, clang string) string {
	out, err := exec.CommandContext(ctx, clang, "-print-multiarch").Output()
	if triple := strings.TrimSpace(string(out)); err == nil && triple != "" {
		return triple
	}
	return map[string]string{
		"amd64":   "x86_64-linux-gnu",
		"arm64":   "aarch64-linux-gnu",
		"386":     "i386-linux-gnu",
		"arm":     "arm-linux-gnueabihf",
		"ppc64le": "powerpc64le-linux-gnu",
		"s390x":   "s390x-linux-gnu",
		"riscv64": "riscv64-linux-gnu",
	}[runtime.GOARCH]
}

func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// installHeaders writes the embedded headers under cacheDir, in a directory
// named by their hash: the path is stable (it appears in the preprocessed
// output that is hashed) and a new header set never mixes with an old one.
func installHeaders(cacheDir string) (string, error) {
	h := sha256.New()
	files := map[string][]byte{}
	err := fs.WalkDir(headers, "include", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := headers.ReadFile(path)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(path, "include/")
		files[rel] = data
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(data))
		h.Write(data)
		return nil
	})
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cacheDir, "include-"+hex.EncodeToString(h.Sum(nil))[:16])
	if dirExists(dir) {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(cacheDir, ".include-*")
	if err != nil {
		return "", err
	}
	for rel, data := range files {
		path := filepath.Join(tmp, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			os.RemoveAll(tmp)
			return "", err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			os.RemoveAll(tmp)
			return "", err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		// Another build installed the same headers meanwhile.
		if dirExists(dir) {
			return dir, nil
		}
		return "", err
	}
	return dir, nil
}
