package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/testns"
	"github.com/dsrlab/dsrlab/topology"
)

// Another host's controller opens a katran's namespace from the agent's
// record only while the path still names the namespace recorded: a PID
// reused by another container's init must not be checked through.
func TestRecordedNamespaces(t *testing.T) {
	t.Setenv("DSRLAB_STATE_DIR", t.TempDir())
	path := func(h netns.NsHandle) string { return fmt.Sprintf("/proc/self/fd/%d", int(h)) }
	a, b := testns.New(t), testns.New(t)
	nsA, err := netconf.FromPath(path(a), "katran")
	if err != nil {
		t.Fatal(err)
	}
	defer nsA.Close()
	if err := saveNamespaces("mh", map[string]*netconf.Namespace{"katran": nsA}); err != nil {
		t.Fatal(err)
	}
	open := RecordedNamespaces("mh")
	katran := &topology.Node{Name: "katran"}
	ns, err := open(katran)
	if err != nil {
		t.Fatal(err)
	}
	if ns.ID() != nsA.ID() {
		t.Errorf("opened %s, recorded %s", ns.ID(), nsA.ID())
	}
	ns.Close()

	// The path now names another namespace.
	file := filepath.Join(labDir("mh"), namespacesFile)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	moved := strings.Replace(string(data), path(a), path(b), 1)
	if err := os.WriteFile(file, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	if ns, err := open(katran); err == nil || !strings.Contains(err.Error(), "dsrlab recover katran") {
		t.Errorf("a path naming another namespace: %v, want an error saying recover", err)
		if ns != nil {
			ns.Close()
		}
	}
	if _, err := open(&topology.Node{Name: "real"}); err == nil || !strings.Contains(err.Error(), "no namespace recorded") {
		t.Errorf("a node without a record: %v", err)
	}
}
