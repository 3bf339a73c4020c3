package prog

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root")
	}
}

func load(t *testing.T, o *Object, entries map[string][]Entry) *Loaded {
	t.Helper()
	l, err := o.Load(entries, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestVerifierRejectionShowsSourceLine(t *testing.T) {
	requireRoot(t)
	o, err := Open(build(t, "testdata/reject.c"), "", "xdp_bad")
	if err != nil {
		t.Fatal(err)
	}
	_, err = o.Load(nil, nil)
	var ve *VerifierError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v (%T), want *VerifierError", err, err)
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{
		"the verifier rejected program xdp_bad: permission denied",
		"reject.c:14",              // the source line, from BTF line info
		"eth->h_proto ==",          // its text
		"invalid access to packet", // the verifier's reason
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message does not contain %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "processed ") {
		t.Errorf("message keeps the statistics line:\n%s", msg)
	}
}

// A rejection after more instructions than traceLimit is not verified
// again for its trace: the reasons and how far the verifier got, once.
func TestBigRejectionVerifiedOnce(t *testing.T) {
	requireRoot(t)
	o, err := Open(build(t, "testdata/bigreject.c"), "", "xdp_big")
	if err != nil {
		t.Fatal(err)
	}
	_, err = o.Load(nil, nil)
	var ve *VerifierError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want *VerifierError", err)
	}
	msg := err.Error()
	t.Log(msg)
	if ve.Untraced <= traceLimit || !strings.Contains(msg, "invalid access to packet") || !strings.Contains(msg, "too many to verify again") {
		t.Errorf("a big rejection: untraced %d\n%s", ve.Untraced, msg)
	}
	if strings.Contains(msg, "verification time") || strings.Contains(msg, "processed ") && !strings.Contains(msg, "instructions processed") {
		t.Errorf("the message keeps statistics lines:\n%s", msg)
	}
}

// Only the chosen program is loaded: xdp_bad beside xdp_ok does not stop it.
func TestLoadOnlyChosenProgram(t *testing.T) {
	requireRoot(t)
	o, err := Open(build(t, "testdata/reject.c"), "", "xdp_ok")
	if err != nil {
		t.Fatal(err)
	}
	l := load(t, o, nil)
	info, err := l.Program.Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "xdp_ok" || info.Type != ebpf.XDP {
		t.Errorf("loaded %s (%s), want XDP program xdp_ok", info.Name, info.Type)
	}
	ret, err := l.Program.Run(&ebpf.RunOptions{Data: make([]byte, 64)})
	if err != nil {
		t.Fatal(err)
	}
	if ret != xdpPass {
		t.Errorf("xdp_ok returned %d, want XDP_PASS", ret)
	}
}

// A map pinned by name loads (cilium/ebpf would want a pin path), unpinned,
// and the program counts in its own map.
func TestLoadPinnedByNameUnpinned(t *testing.T) {
	requireRoot(t)
	o, err := Open(build(t, "testdata/pinned.c"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	l := load(t, o, nil)
	if _, err := l.Program.Run(&ebpf.RunOptions{Data: make([]byte, 64)}); err != nil {
		t.Fatal(err)
	}
	var n uint64
	if err := l.Maps["dsrlab_test_pinned"].Lookup(uint32(0), &n); err != nil || n != 1 {
		t.Errorf("the map counted %d (%v), want 1", n, err)
	}
	if l.Maps["dsrlab_test_pinned"].IsPinned() {
		t.Error("the map was pinned")
	}
}

func TestLoadUnknownMap(t *testing.T) {
	requireRoot(t)
	o, err := Open(build(t, "testdata/maps.c"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = o.Load(map[string][]Entry{"nope": {{}}}, nil)
	if err == nil || !strings.Contains(err.Error(), `no map "nope"`) {
		t.Fatalf("err = %v, want the map's absence", err)
	}
}

// openMaps loads maps.c with entries and reopens its maps the way `dsrlab
// map` does: from the program, by ID.
func openMaps(t *testing.T, entries map[string][2]string) (map[string]*Map, *Object) {
	t.Helper()
	requireRoot(t)
	o, err := Open(build(t, "testdata/maps.c"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	enc := map[string][]Entry{}
	for name, kv := range entries {
		e, err := o.Encode(name, yamlNode(t, kv[0]), yamlNode(t, kv[1]), nil)
		if err != nil {
			t.Fatal(err)
		}
		enc[name] = append(enc[name], e)
	}
	l := load(t, o, enc)
	maps, err := Maps(l.Program, o.Spec)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*Map{}
	for _, m := range maps {
		t.Cleanup(func() { m.Close() })
		byName[m.Name] = m
	}
	return byName, o
}

// The kernel keeps 15 characters of a name; global data keeps its section.
func TestMapsMatchSpecNames(t *testing.T) {
	maps, o := openMaps(t, nil)
	for _, name := range []string{"stats", "backends", "a_rather_long_map_name", ".rodata"} {
		m, ok := maps[name]
		if !ok {
			t.Errorf("no map %s among %v", name, keys(maps))
			continue
		}
		if m.Spec != o.Spec.Maps[name] {
			t.Errorf("map %s matched the wrong spec", name)
		}
	}
	if len(maps) != 4 {
		t.Errorf("maps %v, want 4", keys(maps))
	}
	// Global data dumps too, decoded or as bytes: const volatile verdict = XDP_PASS.
	if rodata, ok := maps[".rodata"]; ok {
		entries := mustDump(t, rodata)
		if len(entries) != 1 || !bytes.Equal(entries[0].Value.Raw, []byte{xdpPass, 0, 0, 0}) {
			t.Errorf(".rodata dump = %v, want verdict 2", entries)
		}
		t.Logf(".rodata: %s", entries[0])
	}
}

// The spec of another object (or none) leaves maps unmatched, shown as bytes.
func TestMapsWithoutMatchingSpec(t *testing.T) {
	requireRoot(t)
	o, err := Open(build(t, "testdata/maps.c"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	l := load(t, o, nil)
	maps, err := Maps(l.Program, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range maps {
		defer m.Close()
		if m.Spec != nil {
			t.Errorf("map %s matched without a spec", m.Name)
		}
		if m.Name == "a_rather_long_map_name" {
			t.Errorf("kernel name not truncated: %s", m.Name)
		}
	}
	var long *Map
	for _, m := range maps {
		if m.Name == "a_rather_long_m" {
			long = m
		}
	}
	if long == nil {
		t.Fatalf("no map named by its kernel name a_rather_long_m")
	}
	entries, _, err := long.Dump(context.Background(), DumpOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].String() != "00 00 00 00: 00 00 00 00" {
		t.Errorf("dump without BTF = %v, want bytes", entries)
	}
	if err := long.Set("0", "1", nil); err == nil || !strings.Contains(err.Error(), "cannot be written by field name") {
		t.Errorf("Set without a spec: err = %v", err)
	}
}

func TestPerCPUWriteAndDump(t *testing.T) {
	maps, _ := openMaps(t, map[string][2]string{"stats": {"1", "{packets: 5, bytes: 1500}"}})
	cpus := ebpf.MustPossibleCPU()
	entries, _, err := maps["stats"].Dump(context.Background(), DumpOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("%d entries, want the array's 2", len(entries))
	}
	e := entries[1]
	if e.Key.String() != "1" {
		t.Fatalf("key %s, want 1", e.Key)
	}
	if len(e.PerCPU) != cpus {
		t.Fatalf("%d per-CPU values, want one per possible CPU (%d)", len(e.PerCPU), cpus)
	}
	for _, v := range e.PerCPU {
		// The bytes too: the value was written on every CPU, not only CPU 0.
		if binary.NativeEndian.Uint64(v.Value.Raw) != 5 || binary.NativeEndian.Uint64(v.Value.Raw[8:]) != 1500 {
			t.Errorf("cpu %d: %s, want {packets: 5, bytes: 1500}", v.CPU, v.Value)
		}
	}
	wantSum := fmt.Sprintf("{packets: %d, bytes: %d}", 5*cpus, 1500*cpus)
	if e.Value.String() != wantSum {
		t.Errorf("sum %s, want %s", e.Value, wantSum)
	}
	if !strings.HasPrefix(e.ValueString(), wantSum+" (sum; cpu0 {packets: 5, bytes: 1500}") {
		t.Errorf("ValueString = %s", e.ValueString())
	}

	js, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var shape struct {
		Key    json.RawMessage
		Values []struct {
			CPU   *int            `json:"cpu"`
			Value json.RawMessage `json:"value"`
		}
		Sum json.RawMessage
	}
	if err := json.Unmarshal(js, &shape); err != nil {
		t.Fatal(err)
	}
	if string(shape.Key) != "1" || len(shape.Values) != cpus || shape.Values[0].CPU == nil ||
		string(shape.Values[0].Value) != `{"packets":5,"bytes":1500}` || len(shape.Sum) == 0 {
		t.Errorf("JSON %s is not {key, values: [{cpu, value}], sum}", js)
	}
}

func TestSetAndDelete(t *testing.T) {
	maps, _ := openMaps(t, map[string][2]string{"backends": {"10.0.0.1", "7"}})
	backends := maps["backends"]
	if err := backends.Set("10.0.0.2", "8", nil); err != nil {
		t.Fatal(err)
	}
	if got := dumpStrings(t, backends); got != "10.0.0.1: 7; 10.0.0.2: 8" {
		t.Fatalf("after Set: %s", got)
	}
	js, err := json.Marshal(mustDump(t, backends)[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(js), `{"key":`) || !strings.Contains(string(js), `"value":`) {
		t.Errorf("JSON %s is not {key, value}", js)
	}
	if err := backends.Delete("10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if got := dumpStrings(t, backends); got != "10.0.0.2: 8" {
		t.Fatalf("after Delete: %s", got)
	}

	for _, tc := range []struct {
		name string
		do   func() error
		want string
	}{
		{"delete absent", func() error { return backends.Delete("10.0.0.9") }, "no entry with key 10.0.0.9"},
		{"delete from array", func() error { return maps["stats"].Delete("0") }, "cannot be deleted"},
		{"bad value", func() error { return backends.Set("10.0.0.3", "{x: 1}", nil) }, "backends.value"},
		{"reference without resolver", func() error { return backends.Delete("real:eth0") }, "backends.key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

const xdpPass = 2

func mustDump(t *testing.T, m *Map) []DumpEntry {
	t.Helper()
	entries, _, err := m.Dump(context.Background(), DumpOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// dumpStrings renders a hash map in key order ("k: v; k: v").
func dumpStrings(t *testing.T, m *Map) string {
	t.Helper()
	var lines []string
	for _, e := range mustDump(t, m) {
		lines = append(lines, e.String())
	}
	slices.Sort(lines)
	return strings.Join(lines, "; ")
}

func keys(maps map[string]*Map) []string {
	var names []string
	for n := range maps {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Globals given by name are set before the load: constants the kernel
// freezes, and the initial values of .data and .bss.
func TestLoadWithGlobals(t *testing.T) {
	requireRoot(t)
	o, err := Open(build(t, "testdata/globals.c"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	run := func(globals map[string]string) uint32 {
		t.Helper()
		enc := map[string][]byte{}
		for name, value := range globals {
			b, err := o.EncodeGlobal(name, yamlNode(t, value), nil)
			if err != nil {
				t.Fatal(err)
			}
			enc[name] = b
		}
		l, err := o.Load(nil, enc)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ret, err := l.Program.Run(&ebpf.RunOptions{Data: make([]byte, 64)})
		if err != nil {
			t.Fatal(err)
		}
		return ret
	}
	for _, c := range []struct {
		name    string
		globals map[string]string
		want    uint32
	}{
		{"defaults", nil, xdpPass},
		{"a constant", map[string]string{"verdict": "1"}, 1},
		{"a constant struct", map[string]string{"cfg": "{vip: 192.168.10.1, mac: 02:00:00:00:00:0b, port: 50007}"}, 3},
		{"the initial value of .data", map[string]string{"limit": "0"}, 0},
		{"the initial value of .bss", map[string]string{"seen": "0xffffffff"}, 0},
	} {
		if got := run(c.globals); got != c.want {
			t.Errorf("%s: the program returned %d, want %d", c.name, got, c.want)
		}
	}
	// The spec itself is left as it was for the next load.
	if got := run(nil); got != xdpPass {
		t.Errorf("after loads with globals, the defaults give %d", got)
	}
}

func TestEncodeGlobalErrors(t *testing.T) {
	o, err := Open(build(t, "testdata/globals.c"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, value, want string }{
		{"verdictt", "1", `no global variable "verdictt"`},
		{"verdictt", "1", "its globals: cfg, limit, seen, verdict"},
		{"cfg", "{vipp: 10.0.0.1}", `1:2: cfg.vipp: struct config has no field "vipp"`},
		{"verdict", "0x100000000", "1:1: verdict: 0x100000000 does not fit __u32"},
	} {
		_, err := o.EncodeGlobal(c.name, yamlNode(t, c.value), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("EncodeGlobal(%s, %s): %v, want an error saying %q", c.name, c.value, err, c.want)
		}
	}
	// The maps behind the globals are not written as maps.
	if _, err := o.Encode(".rodata", yamlNode(t, "0"), yamlNode(t, "{verdict: 1}"), nil); err == nil || !strings.Contains(err.Error(), "program.globals") {
		t.Errorf("an entry for .rodata: %v, want advice to use program.globals", err)
	}
}

// A program array's entries name the object's programs; Load writes their
// descriptors, and a dump names them again.
func TestTailCallEntriesByProgramName(t *testing.T) {
	requireRoot(t)
	o, err := Open(build(t, "testdata/tailcall.c"), "", "xdp_main")
	if err != nil {
		t.Fatal(err)
	}
	run := func(entries map[string][]Entry) (uint32, *Loaded) {
		t.Helper()
		l := load(t, o, entries)
		ret, err := l.Program.Run(&ebpf.RunOptions{Data: make([]byte, 64)})
		if err != nil {
			t.Fatal(err)
		}
		return ret, l
	}
	if ret, _ := run(nil); ret != xdpPass {
		t.Errorf("without an entry the call fell through to %d, want XDP_PASS", ret)
	}
	e, err := o.Encode("jmp", yamlNode(t, "0"), yamlNode(t, "xdp_drop_everything"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ret, l := run(map[string][]Entry{"jmp": {e}})
	if ret != 1 {
		t.Errorf("through the entry: %d, want XDP_DROP", ret)
	}
	maps, err := Maps(l.Program, o.Spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range maps {
		defer m.Close()
		if m.Name != "jmp" {
			continue
		}
		if got := dumpStrings(t, m); !strings.HasPrefix(got, "0: xdp_drop_everything (id ") {
			t.Errorf("jmp dumps as %q, want its entry naming xdp_drop_everything (the kernel keeps 15 characters)", got)
		}
		// up writes such entries only by loading the object again;
		// map set says so.
		if wrote, err := m.Write(e); wrote || err != nil {
			t.Errorf("Write of a program entry: %v, %v; want nothing written", wrote, err)
		}
		if err := m.Set("1", "xdp_drop_everything", nil); err == nil || !strings.Contains(err.Error(), "program.maps") {
			t.Errorf("map set on a program array: %v", err)
		}
	}
	for _, c := range []struct{ value, want string }{
		{"xdp_nope", `1:1: jmp.value: no program "xdp_nope" in the object; the XDP programs of the object: xdp_drop_everything, xdp_main`},
		{"tc_other", `program "tc_other" is a SchedCLS program: a tail call from XDP reaches XDP programs only`},
		{"{prog: xdp_drop_everything}", "names the program a tail call reaches"},
	} {
		if _, err := o.Encode("jmp", yamlNode(t, "0"), yamlNode(t, c.value), nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("entry %s: %v, want an error saying %q", c.value, err, c.want)
		}
	}
}

// katranish loads testdata/katranish.c, Katran's map idioms, with entries
// written as a person reads them, and reopens its maps the way `dsrlab
// map` does, taught how the entries were written.
func katranish(t *testing.T) map[string]*Map {
	t.Helper()
	requireRoot(t)
	src := "testdata/katranish.c"
	o, err := Open(build(t, src), src, "")
	if err != nil {
		t.Fatal(err)
	}
	type kv struct{ map_, key, value string }
	written := []kv{
		{"vip_map", "{vip: 192.168.10.1, port: !be 50007, proto: 6}", "{flags: 0, vip_num: 1}"},
		{"vip_map", "{vipv6: 'fd00::1', port: !be 443, proto: 17}", "{flags: 4, vip_num: 2}"},
		{"ctl_array", "0", "{mac: 02:aa:bb:cc:dd:ee}"},
		{"lru_mapping", "0", "{new: fallback_cache}"},
		{"lru_mapping", "1", "{new: fallback_cache}"},
		{"lru_mapping", "2", "fallback_cache"},
		{"per_vip", "7", "{new: true}"},
		{"server_id_map", "123456", "7"},
	}
	enc := map[string][]Entry{}
	for _, e := range written {
		en, err := o.Encode(e.map_, yamlNode(t, e.key), yamlNode(t, e.value), nil)
		if err != nil {
			t.Fatalf("%s %s: %v", e.map_, e.key, err)
		}
		enc[e.map_] = append(enc[e.map_], en)
	}
	l := load(t, o, enc)
	maps, err := Maps(l.Program, o.Spec)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*Map{}
	for _, m := range maps {
		t.Cleanup(func() { m.Close() })
		for _, e := range written {
			if e.map_ == m.Name {
				m.Learn(yamlNode(t, e.key), yamlNode(t, e.value))
			}
		}
		byName[m.Name] = m
	}
	return byName
}

func TestKatranIdioms(t *testing.T) {
	maps := katranish(t)
	var vips []string
	for _, e := range mustDump(t, maps["vip_map"]) {
		vips = append(vips, e.String())
	}
	slices.Sort(vips)
	want := []string{
		"{vip: 192.168.10.1, port: !be 50007, proto: 6}: {flags: 0, vip_num: 1}",
		"{vipv6: fd00::1, port: !be 443, proto: 17}: {flags: 4, vip_num: 2}",
	}
	if !slices.Equal(vips, want) {
		t.Errorf("vip_map:\n got %q\nwant %q", vips, want)
	}
	e, err := maps["vip_map"].Get("{vip: 192.168.10.1, port: !be 50007, proto: 6}", nil)
	if err != nil || e.ValueString() != "{flags: 0, vip_num: 1}" {
		t.Errorf("get by the written key: %v, %v", e, err)
	}
	if _, err := maps["vip_map"].Get("{vip: 192.168.10.1, port: 50007, proto: 6}", nil); err == nil || !strings.Contains(err.Error(), "no entry with key") {
		t.Errorf("get of the port in host order: %v, want no such entry", err)
	}
	if e, err := maps["ctl_array"].Get("0", nil); err != nil || e.ValueString() != "{mac: 02:aa:bb:cc:dd:ee}" {
		t.Errorf("ctl_array[0] = %v, %v; want the MAC", e, err)
	}

	// The map of maps: two new LRUs of their own and the object's
	// fallback_cache, each named.
	var inner []string
	for _, e := range mustDump(t, maps["lru_mapping"]) {
		inner = append(inner, e.String())
	}
	if len(inner) != 3 || !strings.HasPrefix(inner[0], "0: unnamed (id ") || !strings.Contains(inner[0], "LRUHash, 1000 entries at most") ||
		!strings.HasPrefix(inner[2], "2: fallback_cache (id ") || inner[0] == inner[1] {
		t.Errorf("lru_mapping: %q", inner)
	}
	if e := mustDump(t, maps["per_vip"]); len(e) != 1 || !strings.Contains(e[0].String(), "7: per_vip_inner (id ") || !strings.Contains(e[0].String(), "Array, 4 entries") {
		t.Errorf("per_vip: %v", e)
	}
	for _, m := range []string{"lru_mapping", "events"} {
		if err := maps[m].Set("0", "1", nil); err == nil || strings.Contains(err.Error(), "__type(key") {
			t.Errorf("set on %s: %v, want advice for its kind", m, err)
		}
	}
}

// An array shows its non-zero entries unless asked for all; --limit stops
// early; a done context stops the read at once.
func TestDumpBigArray(t *testing.T) {
	maps := katranish(t)
	ids := maps["server_id_map"]
	entries, more, err := ids.Dump(context.Background(), DumpOptions{})
	if err != nil || more || len(entries) != 1 || entries[0].String() != "123456: 7" {
		t.Errorf("non-zero entries: %v, more %v, %v", entries, more, err)
	}
	entries, more, err = ids.Dump(context.Background(), DumpOptions{All: true, Limit: 5})
	if err != nil || !more || len(entries) != 5 || entries[4].String() != "4: 0" {
		t.Errorf("--all --limit 5: %v, more %v, %v", entries, more, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := ids.Dump(ctx, DumpOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("dump with a done context: %v", err)
	}
	if _, err := ids.Info(ctx); err != nil {
		t.Errorf("info of an array past the count cap reads nothing, so needs no context: %v", err)
	}
}

// Listing a node's maps describes each, a ring buffer among them, without
// reading more than countCap entries of any.
func TestMapInfo(t *testing.T) {
	maps := katranish(t)
	got := map[string]string{}
	for name, m := range maps {
		in, err := m.Info(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		used := "-"
		if in.InUse != nil {
			used = fmt.Sprint(*in.InUse)
		}
		got[name] = fmt.Sprintf("%s %s %s %d %s", in.Type, in.Key, in.Value, in.MaxEntries, used)
	}
	for name, want := range map[string]string{
		"vip_map":       "Hash struct vip_definition struct vip_meta 512 2",
		"ctl_array":     "Array __u32 struct ctl_value 16 1",
		"lru_mapping":   "ArrayOfMaps __u32 __u32 4 3",
		"per_vip":       "HashOfMaps __u32 4 bytes 4 1",
		"server_id_map": "Array __u32 __u32 200000 -",
		"events":        "RingBuf 0 bytes 0 bytes 4096 -",
	} {
		if got[name] != want {
			t.Errorf("%s: %q, want %q", name, got[name], want)
		}
	}
	if _, _, err := maps["events"].Dump(context.Background(), DumpOptions{}); err == nil || !strings.Contains(err.Error(), "ring buffer") {
		t.Errorf("dump of a ring buffer: %v", err)
	}
}
