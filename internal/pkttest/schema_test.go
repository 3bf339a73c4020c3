package pkttest

import (
	"encoding/json"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

const schemaFile = "../../schemas/cases.schema.json"

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

func asJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	j, err := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// The schema an editor checks case files with accepts the shipped ones
// and refuses what the parser refuses for its shape.
func TestSchema(t *testing.T) {
	sch := compileSchema(t)
	for _, file := range []string{"../../examples/xdp-lb-minimal/cases.yaml", "../../examples/xdp-lb-hash/cases.yaml",
		"../../labs/cases/balancer.yaml", "../../labs/cases/healthcheck.yaml", "testdata/failing.yaml", "testdata/tc-cases.yaml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(asJSON(t, data)); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
	for _, bad := range []string{
		"cases: [{name: a, packet: {ipx: {}}, expect: {verdict: 2}}]",
		"cases: [{name: a, packet: {tcp: {port: 1}}, expect: {verdict: 2}}]",
		"cases: [{name: a, packet: {hex: ab}}]",
		"cases: [{name: a, packet: {hex: ab}, expect: {}}]",
		"cases: [{name: a, sequence: [{packet: {hex: ab}, expect: {verdict: 2}}], repeat: 2}]",
		"cases: [{name: a, packet: {ext: [hop, {frag: {}, hop: {}}]}, expect: {verdict: 2}}]",
		"cases: [{name: a, packet: {from: x.pcap, frame: 0}, expect: {verdict: 2}}]",
		"cases: [{name: a, packet: {hex: ab, skb: {tc_index: 1}}, expect: {verdict: 2}}]",
		"cases: [{name: a, packet: {hex: ab}, expect: {packet: {skb: {mark: 1}}}}]",
		"cases: [{name: a, packet: {ip: {}, inner: {skb: {mark: 1}}}, expect: {verdict: 2}}]",
		"program: [xdp]\ncases: [{name: a, packet: {hex: ab}, expect: {verdict: 2}}]",
	} {
		if err := sch.Validate(asJSON(t, []byte(bad))); err == nil {
			t.Errorf("the schema accepts %s", bad)
		}
	}
}

// The schema's layers have the parser's fields, no more and no fewer.
func TestSchemaMatchesLayers(t *testing.T) {
	data, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Defs map[string]struct {
			Properties map[string]any `json:"properties"`
			Enum       []string       `json:"enum"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	if got := schema.Defs["layerName"].Enum; !slices.Equal(got, layerKeys) {
		t.Errorf("layer names: the schema has %v, the parser %v", got, layerKeys)
	}
	if got := slices.Sorted(maps.Keys(schema.Defs["skb"].Properties)); !slices.Equal(got, skbFieldNames) {
		t.Errorf("skb: the schema has %v, the parser %v", got, skbFieldNames)
	}
	for kind, defs := range layerFields {
		if kind == "payload" {
			continue
		}
		var want []string
		for _, d := range defs {
			want = append(want, d.name)
		}
		if kind == "ip" { // either family's, in the schema
			for _, d := range append(slices.Clone(layerFields["ipv4"]), layerFields["ipv6"]...) {
				want = append(want, d.name)
			}
		}
		slices.Sort(want)
		want = slices.Compact(want)
		got := slices.Sorted(maps.Keys(schema.Defs[kind].Properties))
		if !slices.Equal(got, want) {
			t.Errorf("%s: the schema has %v, the parser %v", kind, got, want)
		}
	}
}
