package prog

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func requireClang(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(clangBinary); err != nil {
		t.Skip("clang is not installed (apt-get install clang llvm): cannot compile test programs")
	}
}

// build compiles testdata/<name>.c into a cache private to the test.
func build(t *testing.T, source string) string {
	t.Helper()
	requireClang(t)
	obj, err := Build(context.Background(), source, nil, t.TempDir())
	if err != nil {
		t.Fatalf("Build(%s): %v", source, err)
	}
	return obj
}

// A libbpf-style program (<linux/bpf.h>, <bpf/bpf_helpers.h>,
// <bpf/bpf_endian.h>, <linux/if_ether.h> needing the multiarch asm/ headers)
// compiles with no flags from the user, and the object has BTF.
func TestBuildLibbpfStyle(t *testing.T) {
	obj := build(t, "testdata/reject.c")
	if filepath.Ext(obj) != ".o" || len(filepath.Base(obj)) != 64+2 {
		t.Errorf("object %s is not named <sha256>.o", obj)
	}
	if _, err := Open(obj, "", "xdp_ok"); err != nil {
		t.Fatalf("Open: %v", err)
	}
}

func TestBuildCacheHit(t *testing.T) {
	requireClang(t)
	cache := t.TempDir()
	obj, err := Build(context.Background(), "testdata/multi.c", nil, cache)
	if err != nil {
		t.Fatal(err)
	}
	// A rebuild would replace the file: an old mtime survives only a hit.
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(obj, old, old); err != nil {
		t.Fatal(err)
	}
	again, err := Build(context.Background(), "testdata/multi.c", nil, cache)
	if err != nil {
		t.Fatal(err)
	}
	if again != obj {
		t.Fatalf("second Build gave %s, first %s", again, obj)
	}
	fi, err := os.Stat(obj)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(old) {
		t.Errorf("second Build of an unchanged source compiled again (mtime %v)", fi.ModTime())
	}
}

// An edit of a local header changes what the compiler sees, so the hash.
func TestBuildRebuildsOnHeaderEdit(t *testing.T) {
	requireClang(t)
	dir, cache := t.TempDir(), t.TempDir()
	src := filepath.Join(dir, "prog.c")
	hdr := filepath.Join(dir, "verdict.h")
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(src, "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n#include \"verdict.h\"\n"+
		"SEC(\"xdp\") int xdp_v(struct xdp_md *ctx) { return VERDICT; }\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n")
	write(hdr, "#define VERDICT XDP_PASS\n")
	first, err := Build(context.Background(), src, nil, cache)
	if err != nil {
		t.Fatal(err)
	}
	write(hdr, "#define VERDICT XDP_DROP\n")
	second, err := Build(context.Background(), src, nil, cache)
	if err != nil {
		t.Fatal(err)
	}
	if first == second {
		t.Fatalf("header edited, same object %s", first)
	}
	for _, obj := range []string{first, second} {
		if _, err := os.Stat(obj); err != nil {
			t.Error(err)
		}
	}
}

func TestBuildWithoutClang(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Build(context.Background(), "testdata/multi.c", nil, t.TempDir())
	if !errors.Is(err, ErrNoClang) {
		t.Fatalf("err = %v, want ErrNoClang", err)
	}
	for _, want := range []string{"apt-get install clang llvm", "install-deps.sh --clang", "object:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	requireClang(t)
	for _, tc := range []struct {
		name, source string
		want         []string
	}{
		{"compile error", "testdata/broken.c", []string{"testdata/broken.c:8:9: error:", "undeclared_verdict"}},
		{"missing include", "testdata/broken_include.c", []string{"testdata/broken_include.c:2:10: fatal error:", "no_such_header.h"}},
		{"missing source", "testdata/absent.c", []string{"testdata/absent.c", "no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			_, err := Build(context.Background(), tc.source, nil, cache)
			if err == nil {
				t.Fatal("Build succeeded")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q:\n%v", want, err)
				}
			}
			objs, _ := filepath.Glob(filepath.Join(cache, "*.o"))
			if len(objs) != 0 {
				t.Errorf("failed build left objects: %v", objs)
			}
		})
	}
}

// Objects in the cache are trusted by name: a cache others can write to is
// refused.
func TestSharedCacheIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := Build(context.Background(), "testdata/reject.c", nil, dir)
	if err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Fatalf("Build in a world-writable cache: %v", err)
	}
}

// A Katran-style build: user flags reach clang, glibc headers compile for
// the BPF target, and the cache key covers the flags.
func TestBuildCFlags(t *testing.T) {
	requireClang(t)
	cache := t.TempDir()
	inc, _ := filepath.Abs("testdata/cflags/inc")
	src := "testdata/cflags/prog.c"
	_, err := Build(context.Background(), src, nil, cache)
	if err == nil || !strings.Contains(err.Error(), "RING_SIZE is not defined") {
		t.Fatalf("Build without cflags: %v, want the source's #error", err)
	}
	a, err := Build(context.Background(), src, []string{"-D__KERNEL__", "-DRING_SIZE=8192", "-I", inc}, cache)
	if err != nil {
		t.Fatalf("Build with cflags: %v", err)
	}
	if _, err := Open(a, src, "xdp_flags"); err != nil {
		t.Fatal(err)
	}
	b, err := Build(context.Background(), src, []string{"-D__KERNEL__", "-DRING_SIZE=4096", "-I", inc}, cache)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("another -D gave the same cached object %s", a)
	}
}

// Whatever the source is called, it is compiled as C; what is not a
// regular file never reaches clang; and nothing empty is ever cached.
func TestBuildSourceNotCFile(t *testing.T) {
	requireClang(t)
	dir := t.TempDir()
	txt := filepath.Join(dir, "prog.txt")
	c, err := os.ReadFile("testdata/multi.c")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(txt, c, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.c")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	obj, err := Build(context.Background(), txt, nil, cache)
	if err != nil {
		t.Fatalf("valid C in prog.txt: %v", err)
	}
	if _, err := Open(obj, txt, "xdp_a"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ source, want string }{
		{dir, "a directory"},
		{"/dev/zero", "a device"},
		{empty, "the source defines no program or map"},
	} {
		cache := t.TempDir()
		obj, err := Build(context.Background(), tc.source, nil, cache)
		if err == nil {
			_, err = Open(obj, tc.source, "")
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.source) {
			t.Errorf("%s: %v, want %q naming the source", tc.source, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), cache) {
			t.Errorf("%s: the error names the cache: %v", tc.source, err)
		}
	}
}
