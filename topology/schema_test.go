package topology

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

const schemaFile = "../schemas/topology.schema.json"

// schemaValid lists the invalid fixtures that the JSON schema accepts: their
// problem is in the meaning of well-formed values (addresses that clash or
// miss a subnet, references to nodes, reachability, ranges that depend on
// other fields), which only Parse can judge. Every other invalid fixture
// breaks the file's structure or a value's type or enum, and the schema
// must refuse it too, so that an editor flags it while typing.
var schemaValid = []string{
	"address-duplicate",
	"endpoint-unknown-node",
	"gateway-off-link",
	"interface-reused",
	"ipv4-broadcast-address",
	"ipv4-network-address",
	"ipv4-subnet-mismatch",
	"katran-no-uplink",
	"katran-uplink-without-ipv4",
	"nat-lb-no-routes",
	"nat-real-no-route-back",
	"real-mapping-unknown-node",
	"real-no-route-back",
	"real-uplink-without-ipv4",
	"route-bad-dst",
	"route-bad-via",
	"route-default-with-gateway",
	"route-duplicate",
	"vip-address-is-interface",
	"vip-duplicate",
	"vip-port-zero",
	"vip-port-zero-nat",
	"hc-interval-short",
	"hc-nat",
	"hc-timeout-long",
	"hc-tcp-on-udp",
	"hc-http-on-udp",
	"hc-udp-on-tcp",
	"hc-port-required",
	"hc-path-not-http",
	"program-interface-unknown",
	"ipv6-link-local",
	"ipv6-mtu-small",
	"ipv6-subnet-mismatch",
	"route-family-mismatch",
	"vip6-real-without-ipv6",
	"vip6-katran-without-ipv6",
	"host-unknown",
	"host-no-underlay",
	"host-underlay-duplicate",
	"host-tcp-port",
	"host-mtu-too-big",
	"host-docker-missing",
	"host-local-docker",
	"host-ssh-port",
	"program-interface-required",
	"program-cflags",
	"vip-lb-not-katran",
	"tier-lb-not-katran",
	"tier-asn-trans",
	"tier-asn-shared",
	"tier-keepalive",
	"tier-bgp-static-router",
	"vip-lb-unknown",
	"vip-mode-conflict",
	"vip-real-not-real",
	"vip-real-unknown",
	// Both forms of one real are different JSON values, so uniqueItems
	// does not see the repeat.
	"real-repeated-forms",
	// A schema validates one document; what follows the first is out of
	// its sight.
	"two-documents",
}

// notData lists the invalid fixtures that are not YAML data at all, so
// there is nothing for the schema to validate.
var notData = []string{
	"alias-bomb", // yaml.v3 refuses to expand it into plain data
	"duplicate-key",
	"invalid-utf8",
	"syntax-error",
	"tab-indent",
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	sch, err := c.Compile(schemaFile)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaFile, err)
	}
	return sch
}

// yamlToJSON reads a YAML file as the plain data a YAML-aware editor hands
// to a JSON schema validator.
func yamlToJSON(data []byte) (any, error) {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	b, err := json.Marshal(stringKeys(v))
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
}

// stringKeys turns the map[any]any yaml.v3 makes of mappings with
// non-string keys (a node named 1) into JSON objects.
func stringKeys(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = stringKeys(e)
		}
	case map[any]any:
		m := map[string]any{}
		for k, e := range v {
			m[fmt.Sprint(k)] = stringKeys(e)
		}
		return m
	case []any:
		for i, e := range v {
			v[i] = stringKeys(e)
		}
	}
	return v
}

func TestSchemaAcceptsValidFiles(t *testing.T) {
	sch := compileSchema(t)
	files, err := filepath.Glob("testdata/valid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	labs, err := filepath.Glob("../labs/*.yaml")
	if err != nil || len(labs) == 0 {
		t.Fatalf("no labs: %v", err)
	}
	for _, file := range append(files, labs...) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(data, file); err != nil {
				t.Errorf("Parse:\n%v", err)
			}
			inst, err := yamlToJSON(data)
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(inst); err != nil {
				t.Errorf("schema: %v", err)
			}
			if strings.HasPrefix(file, "../labs/") {
				modeline := "# yaml-language-server: $schema=../schemas/topology.schema.json\n"
				if !strings.HasPrefix(string(data), modeline) {
					t.Errorf("does not start with %q", modeline)
				}
			}
		})
	}
}

func TestSchemaRejectsStructuralErrors(t *testing.T) {
	sch := compileSchema(t)
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			inst, err := yamlToJSON(data)
			if slices.Contains(notData, name) {
				if err == nil {
					t.Errorf("listed in notData, but reads as data")
				}
				return
			}
			if err != nil {
				t.Fatalf("not data, and not listed in notData: %v", err)
			}
			err = sch.Validate(inst)
			switch semantic := slices.Contains(schemaValid, name); {
			case semantic && err != nil:
				t.Errorf("listed in schemaValid, but the schema rejects it: %v", err)
			case !semantic && err == nil:
				t.Errorf("the schema accepts it; it must reject it, or the fixture belongs in schemaValid")
			}
		})
	}
}

// TestSchemaMatchesModel walks the raw model along its yaml tags and the
// schema along its properties, so a field added to one without the other
// fails here.
func TestSchemaMatchesModel(t *testing.T) {
	data, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	defs, _ := root["$defs"].(map[string]any)
	// resolve follows a $ref, and picks the object branch of a oneOf (a
	// real is a name or a mapping).
	var resolve func(s map[string]any) map[string]any
	resolve = func(s map[string]any) map[string]any {
		if ref, ok := s["$ref"].(string); ok {
			def, _ := defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
			return resolve(def)
		}
		if alts, ok := s["oneOf"].([]any); ok {
			for _, alt := range alts {
				if alt := resolve(alt.(map[string]any)); alt["properties"] != nil {
					return alt
				}
			}
		}
		return s
	}
	var walk func(path string, typ reflect.Type, s map[string]any)
	walk = func(path string, typ reflect.Type, s map[string]any) {
		s = resolve(s)
		if typ == reflect.TypeFor[yaml.Node]() {
			return // any YAML value: map entries are checked against BTF at load time
		}
		if typ == reflect.TypeFor[rawLB]() {
			return // a name or a list of names: no fields
		}
		switch typ.Kind() {
		case reflect.Pointer:
			walk(path, typ.Elem(), s)
		case reflect.Slice:
			items, _ := s["items"].(map[string]any)
			walk(path+"[]", typ.Elem(), items)
		case reflect.Map:
			values, _ := s["additionalProperties"].(map[string]any)
			walk(path+".*", typ.Elem(), values)
		case reflect.Struct:
			props, _ := s["properties"].(map[string]any)
			if s["additionalProperties"] != false {
				t.Errorf("%s: the schema allows unknown fields, Parse does not", path)
			}
			tagged := map[string]bool{}
			for f := range typ.Fields() {
				name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if !f.IsExported() || name == "" {
					continue
				}
				tagged[name] = true
				prop, ok := props[name].(map[string]any)
				if !ok {
					t.Errorf("%s.%s (%s.%s) is not in the schema", path, name, typ.Name(), f.Name)
					continue
				}
				if desc, _ := resolve(prop)["description"].(string); desc == "" && prop["description"] == nil {
					t.Errorf("%s.%s has no description in the schema", path, name)
				}
				walk(path+"."+name, f.Type, prop)
			}
			for name := range props {
				if !tagged[name] {
					t.Errorf("%s.%s is in the schema but not in %s", path, name, typ.Name())
				}
			}
		}
	}
	walk("", reflect.TypeFor[rawTopology](), root)
}
