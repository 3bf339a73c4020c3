//go:build linux

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/topology"
)

// `map client` on a node without any XDP program is an error, never an
// empty line and exit 0.
func TestMapOfNodeWithoutProgram(t *testing.T) {
	var out strings.Builder
	for _, args := range [][]string{nil, {"lb_map"}, {"lb_map", "set", "0", "1"}} {
		err := mapOp(context.Background(), &out, mapOptions{format: "table"}, nil, "client", nil, args)
		if err == nil || !strings.Contains(err.Error(), "node client has no XDP or TC program with maps") {
			t.Errorf("map client %v: %v", args, err)
		}
	}
	if out.Len() != 0 {
		t.Errorf("printed %q", out.String())
	}
}

// validate opens the program as up would and reports every mistake of its
// block at once, each at its place.
func TestValidateReportsEveryProgramMistake(t *testing.T) {
	if _, err := exec.LookPath("clang"); err != nil {
		t.Skip("needs clang to compile the example's program")
	}
	t.Setenv("DSRLAB_CACHE_DIR", t.TempDir())
	dir := filepath.Join(t.TempDir(), "lb")
	if _, err := run(t, "example", "xdp-lb-minimal", dir); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "lab.yaml")
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lab := strings.NewReplacer(
		"lb_vip: 192.168.10.1", "lb_vipp: 192.168.10.1",
		"src_mac: katran:eth0", "src_mac: 10.0.0.1",
		"real_server_ip: real:eth0", "real_server_ip: real:eth9",
		"      maps:\n", "      globals: {outer_ttl: 1}\n      maps:\n        nomap: [{key: 0, value: 0}]\n",
	).Replace(string(text))
	lab = strings.Replace(lab, "              dst_mac: router:eth0        # the router forwards the outer packet to the real\n",
		"              dst_mac: router:eth0\n          - {key: 0, value: {lb_vip: 1.2.3.4}}\n          - {key: 5, value: {lb_vip: 1.2.3.4}}\n", 1)
	if err := os.WriteFile(file, []byte(lab), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = run(t, "validate", "-t", file)
	if err == nil {
		t.Fatal("validate accepted the program's mistakes")
	}
	for _, want := range []string{
		`nodes.katran.program.maps.nomap: no map "nomap" in ` + filepath.Join(dir, "xdp_lb.c"),
		"nodes.katran.program.maps.lb_map[0].value.real_server_ip: real:eth9",
		`nodes.katran.program.maps.lb_map[0].value.lb_vipp: struct config has no field "lb_vipp"`,
		`nodes.katran.program.maps.lb_map[0].value.src_mac: "10.0.0.1" is not a MAC`,
		"nodes.katran.program.maps.lb_map[1].key: the same key as lb_map[0]",
		"nodes.katran.program.maps.lb_map[2].key: index 5 is past the end of array lb_map: it has 1 entries, 0..0",
		`nodes.katran.program.globals.outer_ttl: no global variable "outer_ttl"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("validate's errors lack %q:\n%v", want, err)
		}
	}
}

// stats on a lab whose katran runs the user's program says where its
// counters are, and fails rather than print nothing.
func TestStatsOfOwnBalancer(t *testing.T) {
	topo, err := topology.Load("../../examples/xdp-lb-minimal/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = noStats(topo, ownBalancers(topo))
	if err == nil || !strings.Contains(err.Error(), "katran runs your own program (xdp_lb.c)") || !strings.Contains(err.Error(), "`dsrlab map katran`") {
		t.Errorf("stats of a lab with the user's balancer: %v", err)
	}
	nat, err := topology.Load("../../labs/nat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := noStats(nat, ownBalancers(nat)); err == nil || !strings.Contains(err.Error(), "no katran serves a DSR VIP") {
		t.Errorf("stats of a NAT lab: %v", err)
	}
}
