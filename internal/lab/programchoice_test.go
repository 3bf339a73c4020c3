package lab

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/topology"
)

// TestChooseProgram: a case file's program: (or --program) picks one of a
// node's programs by hook, name or file; none names the node's XDP
// program, else its only one; a choice that names none or several is an
// error listing them.
func TestChooseProgram(t *testing.T) {
	choiceLab, err := topology.Load("testdata/choice.yaml")
	if err != nil {
		t.Fatal(err)
	}
	casesLab, err := topology.Load("../../labs/cases/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		topo        *topology.Topology
		node, which string
		want        string // the hook chosen, or the error
	}{
		{choiceLab, "katran", "", "xdp (xdp_count, count.c)"},
		{choiceLab, "katran", "xdp", "xdp (xdp_count, count.c)"},
		{choiceLab, "katran", "eth0:egress", "eth0:egress:2 (tc_count_replies, replies.c)"},
		{choiceLab, "katran", "eth0:ingress:5", "eth0:ingress:5 (tc_drop_port, replies.c)"},
		{choiceLab, "katran", "tc_drop_port", "eth0:ingress:5 (tc_drop_port, replies.c)"},
		{choiceLab, "katran", "eth0:ingress:1", `node katran has no program "eth0:ingress:1"; its programs: ` +
			"xdp (xdp_count, count.c), eth0:egress:2 (tc_count_replies, replies.c), eth0:ingress:5 (tc_drop_port, replies.c)"},
		{choiceLab, "katran", "tc", `"tc" names 2 programs of node katran: ` +
			"eth0:egress:2 (tc_count_replies, replies.c), eth0:ingress:5 (tc_drop_port, replies.c); name one by its hook"},
		{choiceLab, "katran", "replies.c", `"replies.c" names 2 programs of node katran: ` +
			"eth0:egress:2 (tc_count_replies, replies.c), eth0:ingress:5 (tc_drop_port, replies.c); name one by its hook"},
		{choiceLab, "real", "", "node real has several TC programs and no XDP one: name one of " +
			"eth0:egress:1 (tc_count_replies, replies.c), eth0:egress:2 (tc_drop_port, replies.c)"},
		{choiceLab, "real", "eth0:egress", `"eth0:egress" names 2 programs of node real: ` +
			"eth0:egress:1 (tc_count_replies, replies.c), eth0:egress:2 (tc_drop_port, replies.c); name one by its hook"},
		{choiceLab, "real", "eth0:egress:2", "eth0:egress:2 (tc_drop_port, replies.c)"},
		{choiceLab, "real2", "", "eth0:ingress:1 (tc_drop_port, replies.c)"},
		{choiceLab, "real2", "tc", "eth0:ingress:1 (tc_drop_port, replies.c)"},
		{choiceLab, "client", "", "node client runs no program in lab choice; nodes that do: katran, real, real2"},
		{choiceLab, "nobody", "", `lab choice has no node "nobody"; nodes with a program: katran, real, real2`},
		// dsrlab's own: the balancer, and the health checks' encapsulation.
		{casesLab, "katran", "", "xdp (xdp_balancer, dsrlab's)"},
		{casesLab, "katran", "tc_healthcheck", "eth0:egress:65535 (tc_healthcheck, dsrlab's)"},
		{casesLab, "katran", "tc", "eth0:egress:65535 (tc_healthcheck, dsrlab's)"},
	} {
		t.Run(tc.node+"/"+tc.which, func(t *testing.T) {
			c, err := ChooseProgram(t.Context(), tc.topo, tc.node, tc.which)
			got := c.String()
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// A program the topology does not name is found by its name in its
// object, which takes compiling it (cached); a choice that matches by hook
// compiles nothing.
func TestChooseProgramByObjectName(t *testing.T) {
	if _, err := exec.LookPath("clang"); err != nil {
		t.Skip("no clang to compile the program and learn its name")
	}
	t.Setenv("DSRLAB_CACHE_DIR", filepath.Join(t.TempDir(), "cache"))
	dir := t.TempDir()
	for _, f := range []string{"choice.yaml", "count.c", "replies.c"} {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.Replace(data, []byte("{source: count.c, name: xdp_count}"), []byte("{source: count.c}"), 1)
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	topo, err := topology.Load(filepath.Join(dir, "choice.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ChooseProgram(t.Context(), topo, "katran", "eth0:egress")
	if err != nil || c.String() != "eth0:egress:2 (tc_count_replies, replies.c)" {
		t.Errorf("by hook: %v %v", c, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(os.Getenv("DSRLAB_CACHE_DIR"))); len(entries) > 0 {
		t.Errorf("a choice by hook compiled %d objects", len(entries))
	}
	c, err = ChooseProgram(t.Context(), topo, "katran", "xdp_count")
	if err != nil || c.String() != "xdp (xdp_count, count.c)" {
		t.Errorf("by its name in the object: %v %v", c, err)
	}
	if _, err := ChooseProgram(t.Context(), topo, "katran", "xdp_nothing"); err == nil ||
		!strings.Contains(err.Error(), "its programs: xdp (xdp_count, count.c), ") {
		t.Errorf("a name of no program: %v", err)
	}
}
