package examples_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/examples"
)

// Every example directory is embedded (the go:embed line names them).
func TestNamesAreTheDirectories(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	if got := examples.Names(); !slices.Equal(got, dirs) {
		t.Errorf("examples %v, directories %v", got, dirs)
	}
}

// Write gives the same bytes as the repository's directory, and refuses to
// overwrite anything, writing nothing then.
func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mylb")
	if err := examples.Write("xdp-lb-minimal", dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"xdp_lb.c", "lab.yaml", "cases.yaml", "README.md"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("xdp-lb-minimal", name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from the repository's", name)
		}
	}

	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "lab.yaml"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := examples.Write("xdp-lb-hash", other)
	if err == nil || !strings.Contains(err.Error(), "already has lab.yaml") {
		t.Fatalf("writing over a lab.yaml: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(other, "lab.yaml")); string(data) != "mine" {
		t.Error("the user's lab.yaml was overwritten")
	}
	if _, err := os.Stat(filepath.Join(other, "xdp_lb.c")); err == nil {
		t.Error("a refused write left files behind")
	}

	for _, name := range []string{"nope", ".", "xdp-lb-hash/lab.yaml"} {
		if err := examples.Write(name, t.TempDir()); err == nil || !strings.Contains(err.Error(), "there are: xdp-lb-hash, xdp-lb-minimal") {
			t.Errorf("example %q: %v", name, err)
		}
	}
}

// A DIR that cannot hold the example is refused in words, before anything
// is written: a file, a symbolic link to nothing. A link to a directory is
// followed.
func TestWriteIntoWhatIsNotADirectory(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "afile")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(tmp, "danglink")
	if err := os.Symlink(filepath.Join(tmp, "gone"), dangling); err != nil {
		t.Fatal(err)
	}
	toFile := filepath.Join(tmp, "tofile")
	if err := os.Symlink(file, toFile); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dir, want string }{
		{file, file + " is a file, not a directory"},
		{toFile, toFile + " is a file, not a directory"},
		{dangling, dangling + " is a symbolic link to " + filepath.Join(tmp, "gone") + ", which does not exist"},
	} {
		if err := examples.Write("xdp-lb-minimal", c.dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Write into %s: %v, want %q", c.dir, err, c.want)
		}
	}
	if _, err := os.Lstat(filepath.Join(tmp, "gone")); err == nil {
		t.Error("the dangling link's target was created")
	}
	real := filepath.Join(tmp, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(tmp, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if err := examples.Write("xdp-lb-minimal", link); err != nil {
		t.Errorf("Write through a link to a directory: %v", err)
	}
}
