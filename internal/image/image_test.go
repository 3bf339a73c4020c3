package image

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestBuildContextHasRootFSAndApplets(t *testing.T) {
	in := &inputs{busybox: []byte("BUSYBOX"), applets: []string{"sh", "nc", "ip", "busybox", "bad/name"}, self: []byte("DSRLAB"), digest: "d1"}
	data, err := in.buildContext()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*tar.Header{}
	bodies := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[h.Name], bodies[h.Name] = h, string(b)
	}
	if !strings.Contains(bodies["Dockerfile"], "FROM scratch") || !strings.Contains(bodies["Dockerfile"], DigestLabel+"=d1") {
		t.Errorf("Dockerfile = %q", bodies["Dockerfile"])
	}
	if bodies["rootfs/bin/busybox"] != "BUSYBOX" || bodies["rootfs"+BinaryPath] != "DSRLAB" {
		t.Error("busybox or dsrlab binary missing from the root file system")
	}
	for _, a := range []string{"sh", "nc", "ip"} {
		if h := got["rootfs/bin/"+a]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("applet %s is not a symlink to busybox: %+v", a, h)
		}
	}
	if got["rootfs/bin/bad/name"] != nil {
		t.Error("an applet name with a slash escaped into the tree")
	}
	if h := got["rootfs/tmp/"]; h == nil || h.Mode&0o1777 != 0o1777 {
		t.Error("/tmp missing or not world-writable and sticky")
	}
}

func TestDynamicBinariesAreRefusedWithAHint(t *testing.T) {
	_, err := readStatic("/bin/ls", "the hint")
	if err == nil || !strings.Contains(err.Error(), "dynamically linked") || !strings.Contains(err.Error(), "the hint") {
		t.Errorf("readStatic(/bin/ls) = %v", err)
	}
}

// The digest names dsrlab's binary by its Go build ID, whose last part is
// the go command's hash of the linked binary; a binary without one (not
// Go's) is named by its bytes.
func TestGoBuildIDNamesTheBinary(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id := goBuildID(f)
	if parts := strings.Split(id, "/"); len(parts) < 2 || slices.Contains(parts, "") {
		t.Errorf("build ID of the test binary: %q, want the go command's actionID/contentID form", id)
	}
	for _, p := range busyboxCandidates {
		if bb, err := elf.Open(p); err == nil {
			if id := goBuildID(bb); id != "" {
				t.Errorf("busybox (not a Go binary) has build ID %q", id)
			}
			bb.Close()
			break
		}
	}
}

func TestOnlyTheGoCommandsBuildIDsNameABinary(t *testing.T) {
	for id, want := range map[string]bool{
		"Abc_1/Def-2":         true,
		"aaaa/bbbb/cccc/dddd": true,
		"redacted":            false,
		"":                    false,
		"aaaa/":               false,
		"/bbbb":               false,
		"aaaa//cccc":          false,
	} {
		if got := hashedBuildID(id); got != want {
			t.Errorf("hashedBuildID(%q) = %v, want %v", id, got, want)
		}
	}
}
