package e2e

import (
	"fmt"
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
