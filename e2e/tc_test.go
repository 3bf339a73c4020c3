package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/labs"
)

// repliesSource is a real's TC programs (internal/lab/testdata): one counts
// the packets it sends per destination, one drops TCP to a port.
func repliesSource(t *testing.T) string {
	t.Helper()
	src, err := filepath.Abs("../internal/lab/testdata/replies.c")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestTCEgressCountsRepliesPerClient: a TC egress program on the real
// counts the replies it sends back to each client, which `dsrlab map`
// reads; inspect shows it on its hook.
func TestTCEgressCountsRepliesPerClient(t *testing.T) {
	requireSetup(t)
	const name = "tc-e2e-count"
	real := fmt.Sprintf("real:   {kind: real, programs: [{source: %q, name: tc_count_replies, type: tc, direction: egress}]}", repliesSource(t))
	traceLab(t, labs.Reference, name, "tc-e2e-count-", "real:   {kind: real}", real)
	for range 3 {
		if got := dockerExec(t, "hi\n", "tc-e2e-count-client", "nc", vip, vipPort); !strings.Contains(got, "): hi") {
			t.Fatalf("the VIP answered %q", got)
		}
	}
	out, err := dsrlab(t, "map", "--name", name, "real")
	if err != nil || !strings.Contains(out, "replies") || !strings.Contains(out, "Hash") {
		t.Errorf("map real (want the TC program's map listed): %v\n%s", err, out)
	}
	out, err = dsrlab(t, "map", "--name", name, "real", "replies", "get", "10.111.220.11")
	if err != nil || strings.TrimSpace(out) == "0" {
		t.Errorf("replies to the client: %v\n%s", err, out)
	}
	out, err = dsrlab(t, "inspect", "--name", name)
	if err != nil || !strings.Contains(out, "program tc_count_replies (replies.c") || !strings.Contains(out, "tc egress priority 1 on eth0") {
		t.Errorf("inspect (want the TC program on real eth0 egress): %v\n%s", err, out)
	}
}

// TestTCIngressDropFoundByTrace: a TC ingress program on the real drops
// the VIP's port; trace names it as the drop.
func TestTCIngressDropFoundByTrace(t *testing.T) {
	requireSetup(t)
	const name = "tc-e2e-drop"
	real := fmt.Sprintf("real:   {kind: real, programs: [{source: %q, name: tc_drop_port, type: tc, direction: ingress, globals: {blocked_port: %s}}]}",
		repliesSource(t), vipPort)
	traceLab(t, labs.Reference, name, "tc-e2e-drop-", "real:   {kind: real}", real)
	out, code := trace(t, "--name", name)
	checkBroken(t, out, code, "real", "real eth0: TC program tc_drop_port (ingress) dropped it (TC_ACT_SHOT")
}

// TestKatranStyleBalancer: a balancer built the way Katran's is
// (internal/lab/testdata/katranlike: cflags, an include directory, glibc
// headers, the port in network order, a VIP union, MACs in a union, an LRU
// of LRUs), from its own directory, comes up, answers the verbatim nc test
// and passes verify; map shows its maps as the topology wrote them.
func TestKatranStyleBalancer(t *testing.T) {
	requireSetup(t)
	const name = "kl-e2e"
	dir := t.TempDir()
	for _, f := range []string{"balancer.c", "include/katranlike_structs.h"} {
		data, err := os.ReadFile(filepath.Join("../internal/lab/testdata/katranlike", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lab, err := os.ReadFile("../internal/lab/testdata/katranlike/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := writeLab(t, dir, lab, name, "kl-e2e-")
	if out, err := dsrlab(t, "validate", "-t", file); err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	upLab(t, file, name)
	if got := dockerExec(t, "hello\n", "kl-e2e-client", "nc", vip, vipPort); !strings.Contains(got, "): hello") {
		t.Errorf("the VIP answered %q", got)
	}
	if out, err := dsrlab(t, "verify", "--name", name); err != nil {
		t.Errorf("verify: %v\n%s", err, out)
	}
	out, err := dsrlab(t, "map", "--name", name, "katran", "vip_map")
	if err != nil || !strings.Contains(out, "{vip: 192.168.10.1, port: !be 50007, proto: 6}") {
		t.Errorf("map katran vip_map: %v\n%s", err, out)
	}
	out, err = dsrlab(t, "map", "--name", name, "katran")
	if err != nil || !strings.Contains(out, "lru_mapping") || !strings.Contains(out, "ArrayOfMaps") {
		t.Errorf("map katran: %v\n%s", err, out)
	}
	if out, err := dsrlab(t, "graph", "-t", file); err != nil || !strings.Contains(out, "source set by the program") {
		t.Errorf("graph: %v\n%s", err, out)
	}
}
