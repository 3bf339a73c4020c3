package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/load"
	"github.com/dsrlab/dsrlab/topology"
)

const tierLab = "../labs/dsr-tier.yaml"

// Rehearsal sizes, as the issue asks: 300 long connections, a line every
// 100 ms each, the failure a few seconds into the run.
const (
	heldConns     = 300
	heldFor       = 12 * time.Second
	eventAfter    = 4 * time.Second
	answerTimeout = 20 * time.Second // longer than any failover: a slow line is a stall, not a break
)

// failoverRow is one step of the rehearsal, as docs/BENCHMARKS.md shows it.
type failoverRow struct {
	step, mode    string
	broken, total int
	longestWait   time.Duration
	stalled       int
	routesSettled time.Duration // until the router's next hops were what the step leads to
}

// hold runs the long connections from the client while event happens
// eventAfter into the run, and returns what they went through.
func hold(t *testing.T, client string, event func()) *load.Result {
	t.Helper()
	cmd := exec.Command("docker", "exec", client, "dsrlab", "load", "--json", "--target", vip+":"+vipPort,
		"--short", "0", "--long", fmt.Sprint(heldConns), "--interval", "100ms",
		"--timeout", answerTimeout.String(), "--duration", heldFor.String())
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(eventAfter)
	event()
	if err := waitFor(cmd, heldFor+2*answerTimeout); err != nil && !strings.Contains(out.String(), "{") {
		t.Fatalf("load: %v\n%s", err, out.String())
	}
	var res load.Result
	if err := json.Unmarshal([]byte(jsonPart(out.String())), &res); err != nil {
		t.Fatalf("load output: %v\n%s", err, out.String())
	}
	t.Logf("%s", res.Summary())
	return &res
}

// routesOf reads the lab's routes as `dsrlab routes` reports them.
func routesOf(t *testing.T, name string) []lab.RouterRoutes {
	t.Helper()
	routes, err := readRoutes(name)
	if err != nil {
		t.Fatal(err)
	}
	return routes
}

func readRoutes(name string) ([]lab.RouterRoutes, error) {
	out, err := exec.Command(dsrlabBin, "routes", "--name", name, "--format", "json").Output()
	if err != nil {
		return nil, fmt.Errorf("routes: %v\n%s", err, out)
	}
	var routes []lab.RouterRoutes
	if err := json.Unmarshal(out, &routes); err != nil {
		return nil, fmt.Errorf("routes json: %v\n%s", err, out)
	}
	return routes, nil
}

// nextHopNodes are the katrans the router's kernel sends the VIP to.
func nextHopNodes(t *testing.T, name string) []string {
	t.Helper()
	routes, err := readRoutes(name)
	if err != nil {
		t.Fatal(err)
	}
	return okNextHops(routes)
}

func okNextHops(routes []lab.RouterRoutes) []string {
	var nodes []string
	for _, r := range routes {
		for _, vr := range r.Routes {
			for _, h := range vr.NextHops {
				if h.State == "ok" {
					nodes = append(nodes, h.Node)
				}
			}
		}
	}
	slices.Sort(nodes)
	return nodes
}

// waitNextHops waits until the router's next hops are want.
func waitNextHops(t *testing.T, name string, want []string) {
	t.Helper()
	settledIn(t, settleTime(name, want, time.Now()))
}

// settle is how long after a step the router's next hops became what the
// step leads to, or why they did not.
type settle struct {
	after time.Duration
	err   error
}

// settleTime follows the router's next hops from since, while the held
// connections run, until they are want.
func settleTime(name string, want []string, since time.Time) <-chan settle {
	done := make(chan settle, 1)
	go func() {
		deadline := since.Add(30 * time.Second)
		for {
			routes, err := readRoutes(name)
			if err == nil && slices.Equal(okNextHops(routes), want) {
				done <- settle{after: time.Since(since)}
				return
			}
			if time.Now().After(deadline) {
				done <- settle{err: fmt.Errorf("router next hops %v (%v), want %v", okNextHops(routes), err, want)}
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return done
}

func settledIn(t *testing.T, c <-chan settle) time.Duration {
	t.Helper()
	s := <-c
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.after
}

func row(step, mode string, res *load.Result, settled time.Duration) failoverRow {
	return failoverRow{step: step, mode: mode, broken: res.LongFailed, total: res.Long, longestWait: res.LongMaxStall,
		stalled: res.LongStalled, routesSettled: settled}
}

// TestTierFailover is the rehearsal a tier exists for: 300 connections held
// through a VIP of three katrans behind a BGP router while a katran is
// killed, cut off and brought back, and a real drained: none may break,
// because every katran holds the same Maglev ring. The same kill with the
// VIP in NAT mode breaks the connections of the dead balancer: its
// connection table dies with it.
func TestTierFailover(t *testing.T) {
	requireSetup(t)
	topo, err := topology.Load(tierLab)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", topo.Name).Run() })
	if out, err := dsrlab(t, "up", "-t", tierLab); err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	all := []string{"katran1", "katran2", "katran3"}
	out, err := dsrlab(t, "verify", "--name", topo.Name)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	for _, k := range all {
		if !strings.Contains(out, k) {
			t.Errorf("verify did not go through %s:\n%s", k, out)
		}
	}
	routes := routesOf(t, topo.Name)
	if len(routes) != 1 || len(routes[0].Sessions) != 3 {
		t.Fatalf("routes: %+v, want one router with three BGP sessions", routes)
	}
	for _, s := range routes[0].Sessions {
		if s.State != "established" || s.Accepted != 1 {
			t.Errorf("session to %s: %s, %d prefixes accepted; want established with the VIP", s.Node, s.State, s.Accepted)
		}
	}
	if got := nextHopNodes(t, topo.Name); !slices.Equal(got, all) {
		t.Fatalf("router sends the VIP to %v, want %v", got, all)
	}
	client := topo.Node("client").ContainerName
	var rows []failoverRow

	var settled <-chan settle
	res := hold(t, client, func() {
		at := time.Now()
		if _, err := dsrlab(t, "fail", "--name", topo.Name, "katran2"); err != nil {
			t.Fatal(err)
		}
		settled = settleTime(topo.Name, []string{"katran1", "katran3"}, at)
	})
	rows = append(rows, row("kill katran2 (SIGKILL)", "dsr", res, settledIn(t, settled)))
	if res.LongFailed != 0 {
		t.Errorf("killing a katran broke %d of %d connections: %v", res.LongFailed, res.Long, res.Errors)
	}

	res = hold(t, client, func() {
		at := time.Now()
		if _, err := dsrlab(t, "recover", "--name", topo.Name, "katran2"); err != nil {
			t.Fatal(err)
		}
		settled = settleTime(topo.Name, all, at)
	})
	rows = append(rows, row("recover katran2", "dsr", res, settledIn(t, settled)))
	if res.LongFailed != 0 {
		t.Errorf("a katran's return broke %d of %d connections: %v", res.LongFailed, res.Long, res.Errors)
	}
	// It carries new flows again: verify finds a connection through it.
	if out, err := dsrlab(t, "verify", "--name", topo.Name); err != nil || !strings.Contains(out, "katran2") {
		t.Errorf("after recover, verify: %v\n%s", err, out)
	}

	res = hold(t, client, func() {
		at := time.Now()
		if _, err := dsrlab(t, "fail", "--name", topo.Name, "--how", "link", "katran3"); err != nil {
			t.Fatal(err)
		}
		settled = settleTime(topo.Name, []string{"katran1", "katran2"}, at)
	})
	rows = append(rows, row("cut katran3's links", "dsr", res, settledIn(t, settled)))
	if res.LongFailed != 0 {
		t.Errorf("cutting a katran's link broke %d of %d connections: %v", res.LongFailed, res.Long, res.Errors)
	}
	if _, err := dsrlab(t, "recover", "--name", topo.Name, "katran3"); err != nil {
		t.Fatal(err)
	}
	waitNextHops(t, topo.Name, all)

	res = hold(t, client, func() {
		if _, err := dsrlab(t, "real", "drain", "--name", topo.Name, vip+":"+vipPort, "real2"); err != nil {
			t.Fatal(err)
		}
	})
	rows = append(rows, row("drain real2 on the tier", "dsr", res, 0))
	if res.LongFailed != 0 {
		t.Errorf("draining a real broke %d of %d connections: %v", res.LongFailed, res.Long, res.Errors)
	}
	exec.Command(dsrlabBin, "down", "--name", topo.Name).Run()

	rows = append(rows, natTierKill(t))
	writeFailoverReport(t, rows)
}

// natTierKill is the contrast: the same kill with the VIP translated (NAT)
// by two katrans. The dead one's connections break.
func natTierKill(t *testing.T) failoverRow {
	text, err := os.ReadFile(tierLab)
	if err != nil {
		t.Fatal(err)
	}
	lab := strings.NewReplacer("name: tier\n", "name: tiernat\n", `prefix: "tier-"`, `prefix: "tiernat-"`,
		"    proto: tcp\n", "    proto: tcp\n    mode: nat\n", "lb: [katran1, katran2, katran3]", "lb: [katran1, katran2]",
		// A NAT VIP has no tunnel to check its reals through.
		"    healthcheck: {type: tcp}\n", "").Replace(string(text))
	file := filepath.Join(t.TempDir(), "nat-tier.yaml")
	if err := os.WriteFile(file, []byte(lab), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", "tiernat").Run() })
	out, err := dsrlab(t, "up", "-t", file)
	if err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	if !strings.Contains(out, "NAT VIP on 2 balancers") {
		t.Errorf("up did not warn that NAT connections do not survive a balancer:\n%s", out)
	}
	var settled <-chan settle
	res := hold(t, "tiernat-client", func() {
		at := time.Now()
		if _, err := dsrlab(t, "fail", "--name", "tiernat", "katran2"); err != nil {
			t.Fatal(err)
		}
		settled = settleTime("tiernat", []string{"katran1"}, at)
	})
	if res.LongFailed == 0 {
		t.Errorf("a NAT balancer died and none of its connections broke (%s): the contrast DSR is for is not shown", res.Summary())
	}
	return row("kill katran2 (SIGKILL)", "nat", res, settledIn(t, settled))
}

// writeFailoverReport writes the rehearsal as the failover table of
// docs/BENCHMARKS.md when scripts/bench.sh asks for it.
func writeFailoverReport(t *testing.T, rows []failoverRow) {
	path := os.Getenv("DSRLAB_FAILOVER_REPORT")
	if path == "" {
		return
	}
	var b strings.Builder
	fmt.Fprintln(&b, "| step | VIP mode | connections broken / held | longest wait for an echo | connections that waited > 1 s | router next hops settled after |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|")
	for _, r := range rows {
		settled := "-"
		if r.routesSettled > 0 {
			settled = r.routesSettled.Round(10 * time.Millisecond).String()
		}
		fmt.Fprintf(&b, "| %s | %s | %d / %d | %v | %d | %s |\n", r.step, r.mode, r.broken, r.total,
			r.longestWait.Round(10*time.Millisecond), r.stalled, settled)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Error(err)
	}
}
