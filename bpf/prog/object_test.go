package prog

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/dsrlab/dsrlab/bpf/btfvalue"
)

// nobtf.o is committed (testdata/gen.sh): it needs no clang.
func TestOpenWithoutBTF(t *testing.T) {
	_, err := Open("testdata/nobtf.o", "", "")
	if err == nil || !strings.Contains(err.Error(), "compile with -g") {
		t.Fatalf("err = %v, want a hint to compile with -g", err)
	}
}

func TestOpenNotBPF(t *testing.T) {
	for _, tc := range []struct{ name, path, want string }{
		{"not ELF", "testdata/multi.c", "not a BPF ELF object"},
		{"missing", "testdata/absent.o", "no such file"},
		{"a device", "/dev/zero", "a device, not a regular file"},
		{"a directory", "testdata", "a directory, not a file"},
		{"a FIFO", fifo(t), "a FIFO, not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.path, "", "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// fifo makes a named pipe nobody writes to: opening it must not block.
func fifo(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "obj.o")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenPicksXDPProgram(t *testing.T) {
	multi := build(t, "testdata/multi.c")
	maps := build(t, "testdata/maps.c")
	for _, tc := range []struct {
		name, object, prog string
		want               string // the program picked, or
		err                string // the error
	}{
		{"named", multi, "xdp_b", "xdp_b", ""},
		{"only XDP program, tc one beside", maps, "", "xdp_maps", ""},
		{"several, none named", multi, "", "", "several XDP programs in the object, name one of: xdp_a, xdp_b"},
		{"absent", multi, "nope", "", `no program "nope" in the object; XDP programs: xdp_a, xdp_b`},
		{"not XDP", multi, "tc_prog", "", `program "tc_prog" is a SchedCLS program, not XDP; XDP programs: xdp_a, xdp_b`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := Open(tc.object, "", tc.prog)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Program.Name != tc.want || o.Program.Type != ebpf.XDP {
				t.Errorf("picked %s (%s), want XDP program %s", o.Program.Name, o.Program.Type, tc.want)
			}
		})
	}
}

func TestHashIsSHA256OfObject(t *testing.T) {
	obj := build(t, "testdata/multi.c")
	o, err := Open(obj, "", "xdp_a")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if o.Hash() != hex.EncodeToString(sum[:]) {
		t.Errorf("Hash() = %s, want sha256 of the file", o.Hash())
	}
}

func TestMapAbsentListsMaps(t *testing.T) {
	o, err := Open(build(t, "testdata/multi.c"), "", "xdp_a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Map("cfg"); err != nil {
		t.Fatal(err)
	}
	_, err = o.Map("lb_map")
	if err == nil || !strings.Contains(err.Error(), `no map "lb_map"`) || !strings.Contains(err.Error(), "its maps: cfg, raw") {
		t.Fatalf("err = %v, want the map's absence and the list cfg, raw", err)
	}
}

func yamlNode(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

func TestEncode(t *testing.T) {
	o, err := Open(build(t, "testdata/multi.c"), "", "xdp_a")
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(ref string, size int) ([]byte, error) {
		if ref == "real:eth0" && size == 4 {
			return []byte{10, 111, 222, 11}, nil
		}
		return nil, errors.New("names nothing")
	}
	for _, tc := range []struct {
		name, m, key, value string
		want                Entry
		err                 []string
	}{
		{
			name: "fields by name", m: "cfg", key: "0", value: "{addr: real:eth0, weight: 0x102}",
			// struct cfg: __be32 addr, __u16 weight, 2 bytes of padding.
			want: Entry{Key: []byte{0, 0, 0, 0}, Value: []byte{10, 111, 222, 11, 2, 1, 0, 0}},
		},
		{name: "field absent", m: "cfg", key: "0", value: "{adr: 10.0.0.1}", err: []string{"cfg.value", "adr", "addr", "weight"}},
		{name: "key without BTF", m: "raw", key: "0", value: "1", err: []string{"map raw", "no BTF type", "__type(key"}},
		{name: "map absent", m: "nope", key: "0", value: "1", err: []string{`no map "nope"`, "cfg, raw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := o.Encode(tc.m, yamlNode(t, tc.key), yamlNode(t, tc.value), resolve)
			if tc.err != nil {
				if err == nil {
					t.Fatalf("Encode gave %v, want an error", e)
				}
				for _, want := range tc.err {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error does not contain %q: %v", want, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(e.Key) != string(tc.want.Key) || string(e.Value) != string(tc.want.Value) {
				t.Errorf("Encode = %v, want %v", e, tc.want)
			}
		})
	}
}

// The position of a bad value in the topology file survives the wrapping.
func TestEncodeErrorKeepsPosition(t *testing.T) {
	o, err := Open(build(t, "testdata/multi.c"), "", "xdp_a")
	if err != nil {
		t.Fatal(err)
	}
	value := yamlNode(t, "addr: 10.0.0.1\nweight: 70000\n")
	_, err = o.Encode("cfg", yamlNode(t, "0"), value, nil)
	var be *btfvalue.Error
	if !errors.As(err, &be) {
		t.Fatalf("err = %v (%T), want a *btfvalue.Error inside", err, err)
	}
	if be.Line != 2 || !strings.HasPrefix(be.Path, "cfg.value.weight") {
		t.Errorf("error at line %d, path %q, want 2 and cfg.value.weight: %v", be.Line, be.Path, err)
	}
}

// A TC program is picked like an XDP one, among the object's TC programs.
func TestOpenTypePicksTCProgram(t *testing.T) {
	obj := build(t, "testdata/maps.c")
	o, err := OpenType(obj, "", "", ebpf.SchedCLS)
	if err != nil || o.Program.Name != "tc_pass" {
		t.Fatalf("the only TC program: %v, %v", o, err)
	}
	_, err = OpenType(obj, "", "xdp_maps", ebpf.SchedCLS)
	if err == nil || !strings.Contains(err.Error(), `program "xdp_maps" is a XDP program, not TC; TC programs: tc_pass`) {
		t.Errorf("an XDP program asked for as TC: %v", err)
	}
	if _, err := OpenType(build(t, "testdata/globals.c"), "", "", ebpf.SchedCLS); err == nil || !strings.Contains(err.Error(), `no TC program in the object (put it in a section named "tc": SEC("tc"))`) {
		t.Errorf("an object without TC programs: %v", err)
	}
}
