package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/dsrlab/dsrlab/internal/health"
	"github.com/dsrlab/dsrlab/topology"
)

// These tests run the health checks of labs/dsr-3reals.yaml (tcp on the TCP
// VIP, udp-echo on the UDP VIP; every 1 s, fall 3, rise 2) under batches
// of new connections from the client. Detection and recovery times are
// logged, not asserted (a shared machine): docs/HEALTH.md has them.

// labHealth reads the lab's health.json, as the controller wrote it.
func labHealth(t *testing.T, name string) health.State {
	t.Helper()
	st, err := health.ReadState(filepath.Join(os.Getenv("DSRLAB_STATE_DIR"), name))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitStatus waits until every key has status want and returns how long
// that took from since. The bound only keeps a broken controller from
// hanging the suite.
func waitStatus(t *testing.T, name string, since time.Time, want health.Status, keys ...health.Key) time.Duration {
	t.Helper()
	waitHealthOf(t, func() health.State { return labHealth(t, name) }, 20*time.Millisecond, want, keys...)
	return time.Since(since)
}

// waitHealthOf reads health every poll until every key has status want.
func waitHealthOf(t *testing.T, read func() health.State, poll time.Duration, want health.Status, keys ...health.Key) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		st := read()
		done := true
		for _, k := range keys {
			if r, ok := st.Of(k); !ok || r.Status != want {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v never all %s: %+v", keys, want, st.Reals)
		}
		time.Sleep(poll)
	}
}

func key(vip, real string) health.Key { return health.Key{VIP: vip, Katran: "katran", Real: real} }

const (
	tcpVIP = "192.168.10.1:50007/tcp"
	udpVIP = "192.168.10.2:50008/udp"
)

func TestHealthChecks(t *testing.T) {
	requireSetup(t)
	topo, err := topology.Load(threeReals)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", topo.Name).Run() })
	if _, err := dsrlab(t, "up", "-t", threeReals); err != nil {
		t.Fatal(err)
	}
	client := topo.Node("client").ContainerName
	const target = "192.168.10.1:50007"
	all := []health.Key{key(tcpVIP, "real1"), key(tcpVIP, "real2"), key(tcpVIP, "real3"), key(udpVIP, "real1"), key(udpVIP, "real2")}
	waitStatus(t, topo.Name, time.Now(), health.Up, all...)
	// The times go into docs/BENCHMARKS.md when scripts/bench.sh asks.
	var rows []string
	t.Cleanup(func() { writeHealthReport(t, rows) })

	t.Run("a real whose service dies gets no new connection", func(t *testing.T) {
		start := time.Now()
		if _, err := dsrlab(t, "fail", "real2", "--name", topo.Name, "--how", "kill"); err != nil {
			t.Fatal(err)
		}
		detectTCP := waitStatus(t, topo.Name, start, health.Down, key(tcpVIP, "real2"))
		detectUDP := waitStatus(t, topo.Name, start, health.Down, key(udpVIP, "real2"))
		t.Logf("detection: tcp %v, udp-echo %v (interval 1s x fall 3)", detectTCP.Round(time.Millisecond), detectUDP.Round(time.Millisecond))
		res := loadFromClient(t, client, "--target", target, "--short", "200")
		if res.Failed() || res.PerReal["real2"] != 0 {
			t.Errorf("after detection: %s %v; want every connection answered, none by real2", res.Summary(), res.Errors)
		}
		if out, err := dsrlab(t, "events", "--name", topo.Name, "--follow=false", "--format", "json"); err != nil ||
			!strings.Contains(out, `"real":"real2","from":"up","to":"down"`) || !strings.Contains(out, `"container":"dsr3-real2","action":"die"`) {
			t.Errorf("events do not say real2's container died and real2 went down: %v", err)
		}
		if out, err := dsrlab(t, "stats", "--name", topo.Name); err != nil || !strings.Contains(out, "down") {
			t.Errorf("stats do not say real2 is down: %v", err)
		}

		start = time.Now()
		if _, err := dsrlab(t, "recover", "real2", "--name", topo.Name); err != nil {
			t.Fatal(err)
		}
		tcp := waitStatus(t, topo.Name, start, health.Up, key(tcpVIP, "real2"))
		udp := waitStatus(t, topo.Name, start, health.Up, key(udpVIP, "real2"))
		t.Logf("recovery (from recover's start): tcp %v, udp-echo %v (interval 1s x rise 2)", tcp.Round(time.Millisecond), udp.Round(time.Millisecond))
		rows = append(rows, healthRow("tcp", "real's container killed, then recovered", detectTCP, tcp),
			healthRow("udp-echo", "real's container killed, then recovered", detectUDP, udp))
		if res := loadFromClient(t, client, "--target", target, "--short", "200"); res.Failed() || res.PerReal["real2"] == 0 {
			t.Errorf("after recovery: %s %v; want real2 among the reals again", res.Summary(), res.Errors)
		}
	})

	t.Run("a real without its VIP on lo fails although its service runs", func(t *testing.T) {
		ns := nodeNS(t, topo.Node("real3").ContainerName)
		defer ns.Close()
		vip := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("192.168.10.1"), Mask: net.CIDRMask(32, 32)}}
		start := time.Now()
		if err := ns.Do(func() error {
			lo, err := netlink.LinkByName("lo")
			if err != nil {
				return err
			}
			return netlink.AddrDel(lo, vip)
		}); err != nil {
			t.Fatal(err)
		}
		d := waitStatus(t, topo.Name, start, health.Down, key(tcpVIP, "real3"))
		t.Logf("detection of a broken real (VIP off lo): %v", d.Round(time.Millisecond))
		rows = append(rows, healthRow("tcp", "real's VIP taken off its lo (service running)", d, 0))
		if res := loadFromClient(t, client, "--target", target, "--short", "100"); res.Failed() || res.PerReal["real3"] != 0 {
			t.Errorf("with real3 down: %s %v", res.Summary(), res.Errors)
		}
		// up puts the address back; the checks then pass again.
		if _, err := dsrlab(t, "up", "-t", threeReals); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, topo.Name, time.Now(), health.Up, key(tcpVIP, "real3"))
	})

	t.Run("the engine restarts a crashed controller and checks resume", func(t *testing.T) {
		ctr := topo.Prefix + "dsrlab-controller"
		pid := strings.TrimSpace(dockerInspect(t, "{{.State.Pid}}", ctr))
		before := labHealth(t, topo.Name).Updated
		if err := exec.Command("kill", "-9", pid).Run(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			restarts, _ := strconv.Atoi(strings.TrimSpace(dockerInspect(t, "{{.RestartCount}}", ctr)))
			if st := labHealth(t, topo.Name); restarts > 0 && st.Updated.After(before.Add(2*time.Second)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("controller not back: %s", dockerInspect(t, "{{.State.Status}} {{.RestartCount}}", ctr))
			}
			time.Sleep(100 * time.Millisecond)
		}
		res := loadFromClient(t, client, "--target", target, "--short", "300")
		if res.Failed() || res.PerReal["real1"] == 0 || res.PerReal["real2"] == 0 || res.PerReal["real3"] == 0 {
			t.Errorf("after the restart: %s %v; want every real serving", res.Summary(), res.Errors)
		}
	})

	t.Run("an operator's drain survives health", func(t *testing.T) {
		if _, err := dsrlab(t, "real", "drain", "--name", topo.Name, target, "real1"); err != nil {
			t.Fatal(err)
		}
		// Long enough for the checks to have passed rise times over.
		time.Sleep(3 * time.Second)
		if r, _ := labHealth(t, topo.Name).Of(key(tcpVIP, "real1")); r.Status != health.Up {
			t.Errorf("real1's health %s, want up (drained, not failing)", r.Status)
		}
		if res := loadFromClient(t, client, "--target", target, "--short", "200"); res.Failed() || res.PerReal["real1"] != 0 {
			t.Errorf("drained real1 got new connections: %s %v", res.Summary(), res.Errors)
		}
	})

	if _, err := dsrlab(t, "down", "--name", topo.Name); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, topo)
}

// Checks that fail on every real (a port nothing listens on) keep every
// real in the ring: traffic still flows, and the controller says so.
func TestHealthFailOpen(t *testing.T) {
	requireSetup(t)
	file := referenceWith(t, "    reals: [real]", "    reals: [real]\n    healthcheck: {type: tcp, port: 9}")
	topo, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", topo.Name).Run() })
	if _, err := dsrlab(t, "up", "-t", file); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, topo.Name, time.Now(), health.Down, key("192.168.10.1:50007/tcp", "real"))
	deadline := time.Now().Add(30 * time.Second)
	for len(labHealth(t, topo.Name).FailOpen) == 0 {
		if time.Now().After(deadline) {
			logs, _ := exec.Command("docker", "logs", topo.Prefix+"dsrlab-controller").CombinedOutput()
			t.Fatalf("fail open never recorded; health %+v; the controller said:\n%s", labHealth(t, topo.Name), logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := dockerExec(t, "hello\n", "client", "nc", "-w", "2", "192.168.10.1", "50007")
	if !strings.Contains(out, "hello") {
		t.Errorf("no answer through a VIP failing open: %q", out)
	}
	if logs, _ := exec.Command("docker", "logs", topo.Prefix+"dsrlab-controller").CombinedOutput(); !strings.Contains(string(logs), "FAIL OPEN") {
		t.Errorf("controller did not say it fails open:\n%s", logs)
	}
	if _, err := dsrlab(t, "down", "--name", topo.Name); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, topo)
}

func dockerInspect(t *testing.T, format, container string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "inspect", "-f", format, container).CombinedOutput()
	if err != nil {
		t.Fatalf("docker inspect %s: %v\n%s", container, err, out)
	}
	return string(out)
}

func healthRow(check, failure string, detect, recovery time.Duration) string {
	rec := "-"
	if recovery > 0 {
		rec = recovery.Round(10 * time.Millisecond).String()
	}
	return fmt.Sprintf("| %s | %s | %v | %s |", check, failure, detect.Round(10*time.Millisecond), rec)
}

// writeHealthReport writes the detection and recovery times as the table
// of docs/BENCHMARKS.md when scripts/bench.sh asks for it.
func writeHealthReport(t *testing.T, rows []string) {
	path := os.Getenv("DSRLAB_HEALTH_REPORT")
	if path == "" || len(rows) == 0 {
		return
	}
	table := "| check | failure | detected after | recovered after (from `dsrlab recover`) |\n|---|---|---|---|\n" + strings.Join(rows, "\n") + "\n"
	if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
		t.Error(err)
	}
}
