package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/dsrlab/dsrlab/internal/fileio"
)

// The raw types mirror the file format field for field. Addresses stay
// strings here so that a malformed one becomes a positioned validation error
// instead of an opaque decode failure; integers that may be absent are
// pointers so that "missing" and "0" get different messages.
type rawTopology struct {
	Name     string              `yaml:"name"`
	Prefix   string              `yaml:"prefix,omitempty"`
	Defaults rawDefaults         `yaml:"defaults,omitempty"`
	Hosts    map[string]*rawHost `yaml:"hosts,omitempty"`
	VXLAN    *rawVXLAN           `yaml:"vxlan,omitempty"`
	Nodes    map[string]*rawNode `yaml:"nodes"`
	Links    []rawLink           `yaml:"links,omitempty"`
	VIPs     []rawVIP            `yaml:"vips,omitempty"`
}

type rawHost struct {
	Docker   string   `yaml:"docker,omitempty"`
	TLS      *rawTLS  `yaml:"tls,omitempty"`
	Underlay string   `yaml:"underlay,omitempty"`
	MTU      *integer `yaml:"mtu,omitempty"`
}

type rawTLS struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

type rawVXLAN struct {
	Port *integer `yaml:"port,omitempty"`
}

type rawDefaults struct {
	Image string `yaml:"image,omitempty"`
}

type rawNode struct {
	Kind     string            `yaml:"kind"`
	Host     string            `yaml:"host,omitempty"`
	Image    string            `yaml:"image,omitempty"`
	Cmd      string            `yaml:"cmd,omitempty"`
	Env      map[string]string `yaml:"env,omitempty"`
	Exec     []string          `yaml:"exec,omitempty"`
	Gateway  string            `yaml:"gateway,omitempty"`
	Gateway6 string            `yaml:"gateway6,omitempty"`
	Routes   []rawRoute        `yaml:"routes,omitempty"`
	Sysctls  map[string]string `yaml:"sysctls,omitempty"`
	XDP      string            `yaml:"xdp,omitempty"`
	Decap    string            `yaml:"decap,omitempty"`
	Program  *rawProgram       `yaml:"program,omitempty"`
	Routing  string            `yaml:"routing,omitempty"`
	BGP      *rawBGP           `yaml:"bgp,omitempty"`
	Programs []rawProgram      `yaml:"programs,omitempty"`
}

// rawProgram is a user's XDP program on a node. Map keys and values stay
// YAML nodes: they are encoded from the program's BTF when it is loaded, and
// keep their positions for the errors of that encoding.
type rawProgram struct {
	Source    string                   `yaml:"source,omitempty"`
	Object    string                   `yaml:"object,omitempty"`
	Name      string                   `yaml:"name,omitempty"`
	Type      string                   `yaml:"type,omitempty"`
	Direction string                   `yaml:"direction,omitempty"`
	Priority  *integer                 `yaml:"priority,omitempty"`
	CFlags    []string                 `yaml:"cflags,omitempty"`
	Interface string                   `yaml:"interface,omitempty"`
	Maps      map[string][]rawMapEntry `yaml:"maps,omitempty"`
	Globals   map[string]yaml.Node     `yaml:"globals,omitempty"`
}

type rawMapEntry struct {
	Key   yaml.Node `yaml:"key"`
	Value yaml.Node `yaml:"value"`
}

type rawRoute struct {
	Dst string `yaml:"dst"`
	Via string `yaml:"via"`
}

type rawLink struct {
	Endpoints []string `yaml:"endpoints"`
	IPv4      []string `yaml:"ipv4,omitempty"`
	IPv6      []string `yaml:"ipv6,omitempty"`
	MTU       *integer `yaml:"mtu,omitempty"`
}

type rawVIP struct {
	Address string    `yaml:"address"`
	Port    *integer  `yaml:"port"`
	Proto   string    `yaml:"proto,omitempty"`
	Mode    string    `yaml:"mode,omitempty"`
	Service string    `yaml:"service,omitempty"`
	Hash    string    `yaml:"hash,omitempty"`
	LB      rawLB     `yaml:"lb"`
	Reals   []rawReal `yaml:"reals"`
	// HealthCheck is last so that a resolved file reads the VIP first.
	HealthCheck *rawHealthCheck `yaml:"healthcheck,omitempty"`
}

// rawReal is one item of a VIP's reals: a node name, or a mapping that also
// gives the weight.
type rawReal struct {
	Node   string   `yaml:"node"`
	Weight *integer `yaml:"weight,omitempty"`
	// form is the kind of YAML node the real was written as, for the
	// builder to report any other than these two at the item's path.
	form yaml.Kind
}

// rawRealFields are the keys of a rawReal mapping.
var rawRealFields = []string{"node", "weight"}

// UnmarshalYAML accepts both forms of a real. yaml.v3 decodes the node with
// a fresh decoder that ignores KnownFields, so unknown keys are checked
// here. Problems are returned as a yaml.TypeError in yaml.v3's own words,
// which merges them with the rest of the file's decode errors and lets
// decodeErrors position them.
func (r *rawReal) UnmarshalYAML(n *yaml.Node) error {
	r.form = n.Kind
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Decode(&r.Node)
	case yaml.MappingNode:
		type fields rawReal // drops this method, which Decode would call again
		return decodeMapping(n, "topology.rawReal", rawRealFields, (*fields)(r))
	}
	return nil
}

// decodeMapping decodes a mapping into out, refusing keys not in fields:
// yaml.v3 decodes the node of a custom unmarshaler with a fresh decoder
// that ignores KnownFields. Problems are returned as a yaml.TypeError in
// yaml.v3's own words (typeName as it would name the type), which merges
// them with the rest of the file's decode errors and lets decodeErrors
// position them. out must not have the caller's UnmarshalYAML.
func decodeMapping(n *yaml.Node, typeName string, fields []string, out any) error {
	var msgs []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !slices.Contains(fields, k.Value) {
			msgs = append(msgs, fmt.Sprintf("line %d: field %s not found in type %s", k.Line, k.Value, typeName))
		}
	}
	var typeErr *yaml.TypeError
	if err := n.Decode(out); errors.As(err, &typeErr) {
		msgs = append(msgs, typeErr.Errors...)
	} else if err != nil {
		return err
	}
	if msgs != nil {
		return &yaml.TypeError{Errors: msgs}
	}
	return nil
}

// integer is an int that refuses a number with a fraction or an exponent,
// which yaml.v3 would truncate or round into an int without a word.
type integer int

func (i *integer) UnmarshalYAML(n *yaml.Node) error {
	if n.ShortTag() == "!!float" {
		return typeError(n, "int")
	}
	return n.Decode((*int)(i))
}

// typeError says that n cannot be decoded into goType, in the words
// yaml.v3 uses, which decodeErrors knows how to position.
func typeError(n *yaml.Node, goType string) *yaml.TypeError {
	value := ""
	if n.Kind == yaml.ScalarNode {
		value = " `" + n.Value + "`"
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal %s%s into %s", n.Line, n.ShortTag(), value, goType)}}
}

// Load reads and parses the topology file at path: a regular file of at
// most fileio.MaxText bytes (a device or a FIFO given by mistake is refused
// at once rather than read without end).
func Load(path string) (*Topology, error) {
	data, err := fileio.ReadRegular(path, fileio.MaxText)
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
		b.checkTier(t)
		b.checkPaths(t)
	}
	if len(b.errs) > 0 {
		return nil, b.errs.sorted()
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
	case err == nil:
		if errs := emptyItems(file, doc); errs != nil {
			return nil, doc, errs
		}
		// A second document would be silently ignored: the lab in use
		// would not be the whole file the user wrote.
		if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
			return nil, doc, ErrorList{&Error{File: file, Msg: "more than one YAML document; a topology file holds one"}}
		}
		return &raw, doc, nil
	case errors.Is(err, io.EOF): // an empty file, left to validation
		return &raw, doc, nil
	case errors.As(err, &typeErr):
		return nil, doc, decodeErrors(file, doc, typeErr.Errors).sorted()
	default:
		return nil, doc, ErrorList{syntaxError(file, err)}
	}
}

// emptyItems reports list items with no value. yaml.v3 drops them while
// decoding into a list of structs or strings, so a stray "- ~" would
// otherwise vanish without a word.
func emptyItems(file string, d document) ErrorList {
	var errs ErrorList
	d.walk(func(key, val *yaml.Node, p fieldPath) bool {
		if key == nil && len(p) > 0 && val.ShortTag() == "!!null" {
			errs = append(errs, &Error{File: file, Line: val.Line, Column: val.Column, Field: p.String(), Msg: "empty list item"})
		}
		return true
	})
	return errs
}
