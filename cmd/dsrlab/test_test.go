//go:build linux

package main

import (
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/internal/capture"
	"github.com/dsrlab/dsrlab/internal/capture/filter"
)

// requireTestRun skips unless `dsrlab test` can compile and run programs
// here: root for BPF, clang for the examples' C. No Docker: these tests
// start no container and take no lock.
func requireTestRun(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("dsrlab test needs root to load programs")
	}
	if _, err := exec.LookPath("clang"); err != nil {
		t.Skip("no clang to compile the example")
	}
	t.Setenv("DSRLAB_CACHE_DIR", filepath.Join(t.TempDir(), "cache"))
}

// The first loop of the README: an example written out, its cases run.
func TestTestExample(t *testing.T) {
	requireTestRun(t)
	dir := filepath.Join(t.TempDir(), "mylb")
	if _, err := run(t, "example", "xdp-lb-minimal", dir); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "test", filepath.Join(dir, "cases.yaml"))
	if err != nil || !strings.Contains(out, "5 cases: 5 passed, 0 failed") {
		t.Fatalf("dsrlab test: %v\n%s", err, out)
	}

	// A broken edit of the C: the encapsulated packet goes back to the VIP.
	src := filepath.Join(dir, "xdp_lb.c")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(data), "outer->daddr = cfg->real_server_ip;", "outer->daddr = cfg->lb_vip;", 1)
	if broken == string(data) {
		t.Fatal("the example's C no longer has the line this test breaks")
	}
	if err := os.WriteFile(src, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "test", filepath.Join(dir, "cases.yaml"))
	var exit exitError
	if !errors.As(err, &exit) || exit.code != 1 {
		t.Fatalf("a failing case: %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{
		"FAIL  a SYN to the VIP is encapsulated to the real",
		"- ip.dst: want 10.111.222.11 (real:eth0), got 192.168.10.1  (" + filepath.Join(dir, "cases.yaml") + ":24:38)",
		"bytes 30-33: want 0a6fde0b, got c0a80a01",
		"inner.tcp        sport 40000 dport 50007 flags S",
		"5 cases: 2 passed, 3 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report has no %q:\n%s", want, out)
		}
	}

	// One case, by name.
	out, err = run(t, "test", "--run", "^UDP", filepath.Join(dir, "cases.yaml"))
	if !errors.As(err, &exit) || !strings.Contains(out, "1 case: 0 passed, 1 failed") {
		t.Errorf("--run ^UDP: %v\n%s", err, out)
	}

	// The same for CI: JUnit XML with the failures in it.
	out, err = run(t, "test", "--format", "junit", filepath.Join(dir, "cases.yaml"))
	if !errors.As(err, &exit) {
		t.Fatalf("junit: %v", err)
	}
	var report struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal([]byte(out), &report); err != nil || report.Tests != 5 || report.Failures != 3 {
		t.Errorf("junit: %+v %v\n%s", report, err, out)
	}
}

// A capture replayed through the program becomes a case file that passes.
func TestTestFromCapture(t *testing.T) {
	requireTestRun(t)
	dir := t.TempDir()
	// A SYN to the reference lab's VIP, and an ARP request.
	pcap := writePcap(t, dir,
		"02000000000102000000000208004500002800000000400600000a6fdc0bc0a80a019c40c357000000000000000050020000000000000000",
		arpRequest)
	cases := filepath.Join(dir, "cases.yaml")
	out, err := run(t, "test", "--node", "katran", "--from-capture", pcap, "--write-cases", cases)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"1: 02:00:00:00:00:02 > 02:00:00:00:00:01, 10.111.220.11.40000 > 192.168.10.1.50007 TCP S", "    XDP_TX", "2: ", "    XDP_PASS", "wrote 2 cases to " + cases} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if out, err := run(t, "test", cases); err != nil || !strings.Contains(out, "2 cases: 2 passed") {
		t.Errorf("the written cases: %v\n%s", err, out)
	}
	if _, err := run(t, "test", "--from-capture", pcap, "--write-cases", cases); err == nil || !strings.Contains(err.Error(), "overwrites nothing") {
		t.Errorf("written over an existing case file: %v", err)
	}
}

// A bad case file is refused with its positions, before anything loads.
func TestTestBadCaseFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cases.yaml")
	os.WriteFile(file, []byte("cases:\n  - name: x\n    packet: {ip: {dst: nowhere:eth0}}\n    expect: {verdict: XDP_PASS}\n"), 0o644)
	_, err := run(t, "test", file)
	if want := file + `:3:24: cases[0].packet.ip.dst: "nowhere:eth0" names no node:interface of lab "dsr"`; err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if _, err := run(t, "test", "--format", "xml", file); err == nil || !strings.Contains(err.Error(), "want table, json or junit") {
		t.Errorf("--format xml: %v", err)
	}
}

// Choosing which of a node's programs runs: a choice that names none, or
// several, is an error where it was made (the case file's program:,
// --program, the node: with no choice) listing the programs there are;
// a verdict of the other hook's is an error in the case file.
func TestTestProgramChoice(t *testing.T) {
	dir := t.TempDir()
	casesLab, err := filepath.Abs("../../labs/cases/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tcLab, err := filepath.Abs("../../internal/pkttest/testdata/tc-lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const katrans = "xdp (xdp_balancer, dsrlab's), eth0:egress:65535 (tc_healthcheck, dsrlab's)"
	const reals = "eth0:ingress:1 (tc_verdict, tc.c), eth0:egress:2 (tc_ttl, tc.c)"
	for i, tc := range []struct {
		file  string
		flags []string
		want  string // FILE stands for the case file
	}{
		{"topology: " + casesLab + "\nnode: katran\nprogram: nope\ncases: []\n", nil,
			`FILE:3:10: program: node katran has no program "nope"; its programs: ` + katrans},
		{"topology: " + casesLab + "\nnode: katran\ncases: []\n", []string{"--program", "nope"},
			`--program nope: node katran has no program "nope"; its programs: ` + katrans},
		{"topology: " + tcLab + "\nnode: real\ncases: []\n", nil,
			"FILE:2:7: node real has several TC programs and no XDP one: name one of " + reals + " (with program: in the case file, or --program)"},
		{"topology: " + tcLab + "\nnode: real\nprogram: tc\ncases: []\n", nil,
			`FILE:3:10: program: "tc" names 2 programs of node real: ` + reals + "; name one by its hook"},
		{"topology: " + casesLab + "\nnode: katran\nprogram: tc_healthcheck\ncases:\n  - {name: a, packet: {hex: '0000000000000000000000000800'}, expect: {verdict: XDP_PASS}}\n", nil,
			"FILE:5:80: cases[0].expect.verdict: XDP_PASS is an XDP verdict, and tc_healthcheck is a TC program: want one of " +
				"TC_ACT_UNSPEC, TC_ACT_OK, TC_ACT_RECLASSIFY, TC_ACT_SHOT, TC_ACT_PIPE, TC_ACT_STOLEN, TC_ACT_QUEUED, TC_ACT_REPEAT, TC_ACT_REDIRECT, TC_ACT_TRAP"},
		{"topology: " + casesLab + "\nnode: katran\ncases:\n  - {name: a, packet: {hex: '0000000000000000000000000800'}, expect: {verdict: TC_ACT_OK}}\n", nil,
			"FILE:4:80: cases[0].expect.verdict: TC_ACT_OK is a TC verdict, and xdp_balancer is an XDP program: want one of " +
				"XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT"},
	} {
		file := filepath.Join(dir, fmt.Sprintf("cases%d.yaml", i))
		if err := os.WriteFile(file, []byte(tc.file), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := run(t, append(append([]string{"test"}, tc.flags...), file)...)
		if want := strings.ReplaceAll(tc.want, "FILE", file); err == nil || err.Error() != want {
			t.Errorf("case file %d: got %v\nwant %s", i, err, want)
		}
	}
}

// A capture replayed through a TC program becomes a case file with TC
// verdicts and the program chosen, which passes.
func TestTestFromCaptureTC(t *testing.T) {
	requireTestRun(t)
	dir := t.TempDir()
	// A UDP packet, TTL 64, and an ARP request.
	pcap := writePcap(t, dir, "02000000000102000000000208004500001c00000000401166cf0a0000010a000002000000000008ebdb", arpRequest)
	cases := filepath.Join(dir, "cases.yaml")
	out, err := run(t, "test", "-t", "../../internal/pkttest/testdata/tc-lab.yaml", "--node", "real", "--program", "tc_ttl",
		"--from-capture", pcap, "--write-cases", cases)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"1: 02:00:00:00:00:02 > 02:00:00:00:00:01, 10.0.0.1.0 > 10.0.0.2.0 UDP", "    TC_ACT_OK", "2: ", "wrote 2 cases to " + cases} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	written, err := os.ReadFile(cases)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"program: tc_ttl\n", "verdict: TC_ACT_OK\n", "ttl: 1,", "packet: unchanged"} {
		if !strings.Contains(string(written), want) {
			t.Errorf("no %q in the written cases:\n%s", want, written)
		}
	}
	if out, err := run(t, "test", cases); err != nil || !strings.Contains(out, "2 cases: 2 passed") {
		t.Errorf("the written cases: %v\n%s", err, out)
	}
}

const arpRequest = "ffffffffffff020000000002080600010800060400010200000000020a6fdd0c0000000000000a6fdd0b"

// writePcap writes dir/lab.pcap with the frames given in hex.
func writePcap(t *testing.T, dir string, frames ...string) string {
	t.Helper()
	pcap := filepath.Join(dir, "lab.pcap")
	f, err := os.Create(pcap)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := capture.NewPcapWriter(f, filter.Ethernet)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range frames {
		data, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(capture.Packet{Data: data, Length: len(data)}); err != nil {
			t.Fatal(err)
		}
	}
	return pcap
}
