package topology

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"

	"gopkg.in/yaml.v3"
)

// The raw types mirror the file format field for field. Addresses stay
// strings here so that a malformed one becomes a positioned validation error
// instead of an opaque decode failure; integers that may be absent are
// pointers so that "missing" and "0" get different messages.
type rawTopology struct {
	Name     string              `yaml:"name"`
	Prefix   string              `yaml:"prefix,omitempty"`
	Defaults rawDefaults         `yaml:"defaults,omitempty"`
	Nodes    map[string]*rawNode `yaml:"nodes"`
	Links    []rawLink           `yaml:"links,omitempty"`
	VIPs     []rawVIP            `yaml:"vips,omitempty"`
}

type rawDefaults struct {
	Image string `yaml:"image,omitempty"`
}

type rawNode struct {
	Kind    string            `yaml:"kind"`
	Image   string            `yaml:"image,omitempty"`
	Cmd     string            `yaml:"cmd,omitempty"`
	Env     map[string]string `yaml:"env,omitempty"`
	Exec    []string          `yaml:"exec,omitempty"`
	Gateway string            `yaml:"gateway,omitempty"`
	Routes  []rawRoute        `yaml:"routes,omitempty"`
	Sysctls map[string]string `yaml:"sysctls,omitempty"`
	XDP     string            `yaml:"xdp,omitempty"`
	Decap   string            `yaml:"decap,omitempty"`
}

type rawRoute struct {
	Dst string `yaml:"dst"`
	Via string `yaml:"via"`
}

type rawLink struct {
	Endpoints []string `yaml:"endpoints"`
	IPv4      []string `yaml:"ipv4,omitempty"`
	MTU       *int     `yaml:"mtu,omitempty"`
}

type rawVIP struct {
	Address string   `yaml:"address"`
	Port    *int     `yaml:"port"`
	Proto   string   `yaml:"proto,omitempty"`
	LB      string   `yaml:"lb"`
	Reals   []string `yaml:"reals"`
}

// Load reads and parses the topology file at path.
func Load(path string) (*Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse decodes a topology, fills in defaults and derived values, and
// validates it. file names the source in error positions and is kept in
// Topology.File. A topology with problems yields an ErrorList holding all
// of them.
func Parse(data []byte, file string) (*Topology, error) {
	raw, doc, errs := decode(data, file)
	if errs != nil {
		// Fields that failed to decode are left zero, and validating them
		// would only repeat the decode errors in other words.
		return nil, errs
	}
	b := &builder{file: file, doc: doc, ifaceAddrs: map[netip.Addr]fieldPath{}}
	t := b.build(raw)
	if len(b.errs) == 0 {
		// Reachability is judged on the whole resolved graph; on a graph
		// with holes in it, it would only echo the errors found so far.
		derive(t)
		b.checkPaths(t)
	}
	if len(b.errs) > 0 {
		b.errs.sort()
		return nil, b.errs
	}
	return t, nil
}

// decode reads data strictly into a rawTopology, and also into a node tree
// that positions later errors.
func decode(data []byte, file string) (*rawTopology, document, ErrorList) {
	var tree yaml.Node
	if err := yaml.Unmarshal(data, &tree); err != nil {
		return nil, document{}, ErrorList{syntaxError(file, err)}
	}
	doc := newDocument(&tree)

	var raw rawTopology
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(&raw)
	var typeErr *yaml.TypeError
	switch {
	case err == nil, errors.Is(err, io.EOF): // io.EOF: an empty file, left to validation
		return &raw, doc, nil
	case errors.As(err, &typeErr):
		errs := decodeErrors(file, doc, typeErr.Errors)
		errs.sort()
		return nil, doc, errs
	default:
		return nil, doc, ErrorList{syntaxError(file, err)}
	}
}
