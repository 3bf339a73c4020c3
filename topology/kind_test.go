package topology

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// The schema's kind enum and its per-kind fields are written by hand for
// editors; the kinds table is what Parse uses. They must agree.
func TestSchemaKindsAgreeWithTable(t *testing.T) {
	data, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Defs map[string]struct {
			Properties struct {
				Kind struct {
					Enum []string `json:"enum"`
				} `json:"kind"`
			} `json:"properties"`
			AllOf []struct {
				If struct {
					Properties struct {
						Kind struct {
							Const string `json:"const"`
						} `json:"kind"`
					} `json:"properties"`
				} `json:"if"`
				Else struct {
					Not struct {
						Required []string `json:"required"`
					} `json:"not"`
					AnyOf []struct {
						Not struct {
							Required []string `json:"required"`
						} `json:"not"`
					} `json:"anyOf"`
				} `json:"else"`
			} `json:"allOf"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	node, ok := schema.Defs["node"]
	if !ok {
		t.Fatalf("%s has no $defs.node", schemaFile)
	}
	var want []string
	fieldOwner := map[string][]string{}
	for _, s := range Kinds() {
		want = append(want, string(s.Kind))
		if s.XDPField {
			fieldOwner["xdp"] = append(fieldOwner["xdp"], string(s.Kind))
		}
		if s.DecapField {
			fieldOwner["decap"] = append(fieldOwner["decap"], string(s.Kind))
		}
	}
	if got := node.Properties.Kind.Enum; !slices.Equal(got, want) {
		t.Errorf("schema kind enum %v, kinds table %v", got, want)
	}
	got := map[string][]string{}
	for _, c := range node.AllOf {
		fields := c.Else.Not.Required
		for _, alt := range c.Else.AnyOf {
			fields = append(fields, alt.Not.Required...)
		}
		for _, f := range fields {
			got[f] = append(got[f], c.If.Properties.Kind.Const)
		}
	}
	for field, kinds := range fieldOwner {
		if !slices.Equal(got[field], kinds) {
			t.Errorf("schema allows %q on %v, kinds table on %v", field, got[field], kinds)
		}
	}
}

func TestEveryKindIsComplete(t *testing.T) {
	seen := map[Kind]bool{}
	for _, s := range Kinds() {
		if seen[s.Kind] {
			t.Errorf("kind %s listed twice", s.Kind)
		}
		seen[s.Kind] = true
		if s.Fill == "" || s.Stroke == "" {
			t.Errorf("kind %s lacks its graph colours", s.Kind)
		}
		if s.Kind.Spec() != s {
			t.Errorf("kind %s does not find its own spec", s.Kind)
		}
	}
	if Kind("switch").Spec() != nil {
		t.Error("an unknown kind has a spec")
	}
}
