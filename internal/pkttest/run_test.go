//go:build linux

package pkttest

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/bpf/prog"
	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// runFile runs a case file as `dsrlab test` does: against the lab, node
// and program it names. It skips without root or clang.
func runFile(t *testing.T, file string) []*Result {
	t.Helper()
	s, r := openFile(t, file)
	return r.Run(s)
}

// openFile reads a case file and opens the program it tests.
func openFile(tb testing.TB, file string) (*Suite, *Runner) {
	tb.Helper()
	if err := CanRun(); err != nil {
		tb.Skip(err)
	}
	tb.Setenv("DSRLAB_CACHE_DIR", filepath.Join(tb.TempDir(), "cache"))
	data, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	h, err := ReadHeader(data, file)
	if err != nil {
		tb.Fatal(err)
	}
	labFile := h.Topology
	if !filepath.IsAbs(labFile) {
		labFile = filepath.Join(filepath.Dir(file), labFile)
	}
	topo, err := topology.Load(labFile)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := lab.ChooseProgram(tb.Context(), topo, h.Node, h.Program)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := lab.OpenNodeProgram(tb.Context(), topo, c)
	if errors.Is(err, prog.ErrNoClang) {
		tb.Skip(err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	s, err := Parse(data, file, lab.Resolver(topo), TargetOf(p))
	if err != nil {
		tb.Fatal(err)
	}
	return s, &Runner{Program: p, Resolver: lab.Resolver(topo)}
}

func requirePass(t *testing.T, results []*Result) {
	t.Helper()
	var b strings.Builder
	if err := WriteTable(&b, results, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if !r.Passed() {
			t.Fatalf("not every case passed:\n%s", b.String())
		}
	}
	if len(results) == 0 {
		t.Fatal("no cases")
	}
}

// The case files the repository ships pass: both examples' and those of
// dsrlab's own balancer and health-check encapsulation.
func TestShippedCaseFiles(t *testing.T) {
	for _, file := range []string{
		"../../examples/xdp-lb-minimal/cases.yaml",
		"../../examples/xdp-lb-hash/cases.yaml",
		"../../labs/cases/balancer.yaml",
		"../../labs/cases/healthcheck.yaml",
	} {
		t.Run(file, func(t *testing.T) { requirePass(t, runFile(t, file)) })
	}
}

// The balancer's case file covers what it does: encapsulation, passing,
// answering pings, fragmentation needed, drained reals.
func TestBalancerCasesCoverItsBehaviours(t *testing.T) {
	data, err := os.ReadFile("../../labs/cases/balancer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"verdict: XDP_TX", "verdict: XDP_PASS", "type: echo-reply", "code: 4, mtu:", "drained", "STAT_LRU_HIT", "verdict: XDP_DROP"} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("labs/cases/balancer.yaml has no %q", want)
		}
	}
}

// The health check's case file shows a marked check encapsulated and
// other packets passing untouched.
func TestHealthCheckCasesCoverItsBehaviours(t *testing.T) {
	data, err := os.ReadFile("../../labs/cases/healthcheck.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"program: tc_healthcheck", "skb: {mark: 0x64730000}", "proto: ipip", "proto: ipv6",
		"an unmarked packet passes untouched", "verdict: TC_ACT_OK, packet: unchanged", "verdict: TC_ACT_SHOT"} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("labs/cases/healthcheck.yaml has no %q", want)
		}
	}
}

// A user's TC program runs through BPF_PROG_TEST_RUN: every TC verdict by
// name, the socket buffer's mark in and out, its maps (tc-cases.yaml).
func TestTCProgram(t *testing.T) {
	requirePass(t, runFile(t, "testdata/tc-cases.yaml"))
}

// A TC program's failing case says which verdict and mark it got, and the
// packet a TC program changed is compared as it left it.
func TestTCProgramReports(t *testing.T) {
	lab, err := filepath.Abs("testdata/tc-lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "cases.yaml")
	write := func(program string) {
		err := os.WriteFile(file, []byte(`topology: `+lab+`
node: real
program: `+program+`
cases:
  - name: wrong verdict and mark
    packet: {skb: {mark: 1, priority: 2}, eth: {}, ip: {src: 10.0.0.1, dst: 10.0.0.2, ttl: 64}, udp: {}}
    expect: {verdict: TC_ACT_OK, skb: {mark: 1}}
  - name: no TC action
    packet: {skb: {priority: 42}, eth: {}, ip: {src: 10.0.0.1, dst: 10.0.0.2, ttl: 64}, udp: {}}
    expect: {verdict: TC_ACT_OK}
  - name: the TTL rewritten
    packet: {eth: {}, ip: {src: 10.0.0.1, dst: 10.0.0.2, ttl: 64}, udp: {}}
    expect: {verdict: TC_ACT_OK, packet: {ipv4: {ttl: 1, checksum: ok}, udp: {checksum: ok}}}
`), 0o644)
		if err != nil {
			t.Fatal(err)
		}
	}
	write("tc_verdict")
	var table strings.Builder
	WriteTable(&table, runFile(t, file), RenderOptions{})
	for _, want := range []string{
		"- verdict: want TC_ACT_OK, got TC_ACT_SHOT  (" + file + ":7:23)",
		"- skb.mark: want 0x1 (1), got 0x2 (2)  (" + file + ":7:46)",
		"      skb      mark 0x2 (2) priority 2",
		"- verdict: want TC_ACT_OK, got 42 (no TC action)",
		"- ipv4.ttl: want 1, got 64",
		"3 cases: 0 passed, 3 failed",
	} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("no %q in:\n%s", want, table.String())
		}
	}

	var js bytes.Buffer
	if err := WriteJSON(&js, runFile(t, file)); err != nil {
		t.Fatal(err)
	}
	var report []struct {
		Runs []struct {
			SKB *jsonSKB `json:"skb"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(js.Bytes(), &report); err != nil || report[0].Runs[0].SKB == nil || *report[0].Runs[0].SKB != (jsonSKB{Mark: 2, Priority: 2}) {
		t.Errorf("the JSON report's socket buffer: %v\n%s", err, js.String())
	}

	write("eth0:egress")
	results := runFile(t, file)
	if !results[2].Passed() {
		table.Reset()
		WriteTable(&table, results[2:], RenderOptions{})
		t.Errorf("tc_ttl does not leave TTL 1 with a right checksum:\n%s", table.String())
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update if the change is intended):\n%s", name, got)
	}
}

// A failing case says what differs, where the case file says it, and
// shows the packets: the table, JSON and JUnit reports against golden
// files.
func TestFailingCaseReports(t *testing.T) {
	results := runFile(t, "testdata/failing.yaml")
	for _, r := range results {
		r.Duration = 0
	}
	passed := 0
	for _, r := range results {
		if r.Passed() {
			passed++
		}
	}
	if passed != 1 {
		t.Errorf("%d cases passed, want only the last one", passed)
	}
	var table, js, junit bytes.Buffer
	if err := WriteTable(&table, results, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "failing.txt", table.Bytes())
	if err := WriteJSON(&js, results); err != nil {
		t.Fatal(err)
	}
	golden(t, "failing.json", js.Bytes())
	if err := WriteJUnit(&junit, results); err != nil {
		t.Fatal(err)
	}
	golden(t, "failing.xml", junit.Bytes())
}

// A program that runs as long as the kernel lets it is reported, not
// hung on: one whose tail calls the kernel cuts off (and that then
// returns no XDP action), one that loops the most bpf_loop allows.
func TestRunawayPrograms(t *testing.T) {
	lab, err := os.ReadFile("testdata/runaway-lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("testdata/runaway.c")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"runaway.c": src, "cases.yaml": []byte(`topology: lab.yaml
node: katran
cases:
  - name: tail calls until the kernel stops them
    packet: {eth: {}, ip: {src: 10.0.0.1, dst: 10.0.0.2}, udp: {}}
    expect: {verdict: 42, maps: {runs: {key: 0, value: 34}}}   # the first run and 33 tail calls
  - name: the same, expected to pass
    packet: {eth: {}, ip: {src: 10.0.0.1, dst: 10.0.0.2}, udp: {}}
    expect: {verdict: XDP_PASS}
  - name: its map
    packet: {eth: {}, ip: {src: 10.0.0.1, dst: 10.0.0.2}, udp: {}}
    expect: {maps: {runs: {key: 0, value: 34}}}
`)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write := func(program string) {
		if err := os.WriteFile(filepath.Join(dir, "lab.yaml"), bytes.ReplaceAll(lab, []byte("PROGRAM"), []byte(program)), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	write("xdp_tail_forever")
	results := runFile(t, filepath.Join(dir, "cases.yaml"))
	if !results[0].Passed() {
		t.Errorf("34 runs and verdict 42: %+v %v", results[0].Runs, results[0].Err)
	}
	var table strings.Builder
	WriteTable(&table, results[1:], RenderOptions{})
	if !strings.Contains(table.String(), "- verdict: want XDP_PASS, got 42 (no XDP action)") {
		t.Errorf("an unknown verdict is not reported as such:\n%s", table.String())
	}

	write("xdp_loop_max")
	results = runFile(t, filepath.Join(dir, "cases.yaml"))
	if err := results[2].Err; err == nil || !strings.HasSuffix(err.Error(), "cases.yaml:12:27: expect.maps.runs: the program uses no such map; its maps: (none)") {
		t.Errorf("a map the program does not use: %v", err)
	}
	if !results[1].Passed() || results[1].Runs[0].Verdict != XDPPass {
		t.Errorf("the longest bpf_loop: %+v %v", results[1].Runs, results[1].Err)
	}
}

// BenchmarkExampleCases is `dsrlab test cases.yaml` of the minimal example
// once compiled: the loop a user waits on after each edit.
func BenchmarkExampleCases(b *testing.B) {
	s, r := openFile(b, "../../examples/xdp-lb-minimal/cases.yaml")
	for b.Loop() {
		for _, res := range r.Run(s) {
			if !res.Passed() {
				b.Fatalf("%s failed", res.Case.Name)
			}
		}
	}
}
