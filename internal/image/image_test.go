package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
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
