package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dsrlab/dsrlab/internal/fileio"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/topology"
)

// namespacesFile records, in the agent's state on another host, the
// network namespaces of that host's nodes as up last found them: the
// controller there has no engine to ask where they are.
const namespacesFile = "namespaces.json"

type recordedNamespace struct {
	Path string `json:"path"` // /proc/PID/ns/net of the node's init
	ID   string `json:"id"`   // netconf.Namespace.ID when recorded
}

// saveNamespaces records the open namespaces of the agent's nodes.
func saveNamespaces(lab string, open map[string]*netconf.Namespace) error {
	rec := map[string]recordedNamespace{}
	for node, ns := range open {
		rec[node] = recordedNamespace{Path: ns.Path(), ID: ns.ID()}
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(labDir(lab), namespacesFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.WriteFile(path+".tmp", data, 0o644); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// RecordedNamespaces opens a node's namespace from what the agent
// recorded, as another host's controller does. A node whose container
// restarted since has another namespace, which only up (or recover) finds
// and wires: the controller says so rather than check through nothing.
func RecordedNamespaces(lab string) func(n *topology.Node) (*netconf.Namespace, error) {
	return func(n *topology.Node) (*netconf.Namespace, error) {
		data, err := fileio.ReadRegular(filepath.Join(labDir(lab), namespacesFile), fileio.MaxText)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		var rec map[string]recordedNamespace
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, fmt.Errorf("node %s: %s: %w", n.Name, namespacesFile, err)
		}
		r, ok := rec[n.Name]
		if !ok {
			return nil, fmt.Errorf("node %s: no namespace recorded by up", n.Name)
		}
		ns, err := netconf.FromPath(r.Path, n.Name)
		if err == nil && ns.ID() != r.ID {
			ns.Close()
			err = fmt.Errorf("node %s: %s names another namespace now", n.Name, r.Path)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: its container restarted since up wired it? `dsrlab recover %s` wires it again", err, n.Name)
		}
		return ns, nil
	}
}
