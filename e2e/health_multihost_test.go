package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/health"
	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/topology"
)

// The host of this file's test: its katran's checks run in dsrlab's agent
// there.
const (
	healthHost      = "e2hc"
	healthHostIndex = 7
)

// remoteHealth reads the health of the reals katran checks, through
// stats (the controller of the katran's host wrote it there).
func remoteHealth(t *testing.T, name string) health.State {
	t.Helper()
	cmd := exec.Command(dsrlabBin, "stats", "--name", name, "--format", "json")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		agent, _ := exec.Command("docker", "-H", hostEngine(healthHost), "ps", "-a", "--format", "{{.Names}} {{.Status}}").CombinedOutput()
		logs, _ := exec.Command("docker", "-H", hostEngine(healthHost), "logs", "--tail", "20", name+"-dsrlab-agent-"+healthHost).CombinedOutput()
		t.Fatalf("stats: %v: %s\non %s:\n%s\nagent's log:\n%s", err, stderr.String(), healthHost, agent, logs)
	}
	var stats []lab.BalancerStats
	if err := json.Unmarshal(out, &stats); err != nil {
		t.Fatalf("stats: %v\n%s", err, out)
	}
	var st health.State
	for _, s := range stats {
		st.Reals = append(st.Reals, s.Health...)
	}
	return st
}

// waitRemoteStatus waits until every key has status want; stats starts a
// process on the other host each time, hence the slower poll.
func waitRemoteStatus(t *testing.T, name string, want health.Status, keys ...health.Key) {
	t.Helper()
	waitHealthOf(t, func() health.State { return remoteHealth(t, name) }, 200*time.Millisecond, want, keys...)
}

// remoteDocker runs the docker CLI against the other host's engine; the
// bound keeps a client that hangs from hanging the suite (and the
// simulated host, which only the test's cleanup stops).
func remoteDocker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", append([]string{"-H", hostEngine(healthHost)}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// labs/dsr-3reals.yaml with its katran and router on another host: the
// checks of that katran run there, in dsrlab's agent, which the engine
// there restarts after a crash, and down leaves nothing on either host.
func TestHealthChecksOnAnotherHost(t *testing.T) {
	requireSetup(t)
	remote := startHost(t, healthHost, healthHostIndex)
	data, err := os.ReadFile(threeReals)
	if err != nil {
		t.Fatal(err)
	}
	file := writeLab(t, t.TempDir(), data, "hmh", "hmh-",
		"katran: {kind: katran}", "katran: {kind: katran, host: "+healthHost+"}",
		"router: {kind: router}", "router: {kind: router, host: "+healthHost+"}",
		"prefix: \"dsr3-\"\n", "prefix: \"dsr3-\"\n"+hostsBlockWith(healthHost, healthHostIndex))
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", "hmh").Run() })
	if out, err := dsrlab(t, "up", "-t", file); err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	katran := func(vip, real string) health.Key { return health.Key{VIP: vip, Katran: "katran", Real: real} }
	waitRemoteStatus(t, "hmh", health.Up, katran(tcpVIP, "real1"), katran(tcpVIP, "real2"), katran(tcpVIP, "real3"))
	if names := labContainersOnLocal(t, "hmh"); strings.Contains(strings.Join(names, " "), "dsrlab-controller") {
		t.Errorf("a controller runs on this host, whose no katran checks anything: %v", names)
	}
	const target = "192.168.10.1:50007"
	// The router is read where it runs, by the agent there.
	if out, err := dsrlab(t, "routes", "--name", "hmh", "--format", "json"); err != nil ||
		!strings.Contains(out, `"router": "router"`) || !strings.Contains(out, `"node": "katran"`) || !strings.Contains(out, `"state": "ok"`) {
		t.Errorf("routes of a router on another host: %v", err)
	}

	// real2's service dies: the other host's katran stops sending it new
	// connections, and events (read from that host) say so.
	if _, err := dsrlab(t, "fail", "real2", "--name", "hmh", "--how", "kill"); err != nil {
		t.Fatal(err)
	}
	waitRemoteStatus(t, "hmh", health.Down, katran(tcpVIP, "real2"))
	if res := loadFromClient(t, "hmh-client", "--target", target, "--short", "200"); res.Failed() || res.PerReal["real2"] != 0 {
		t.Errorf("with real2 down: %s %v; want every connection answered, none by real2", res.Summary(), res.Errors)
	}
	out, err := dsrlab(t, "events", "--name", "hmh", "--follow=false", "--format", "json")
	if err != nil || !strings.Contains(out, `"real":"real2","from":"up","to":"down"`) || !strings.Contains(out, `"host":"`+healthHost+`"`) {
		t.Errorf("events do not say real2 went down on %s: %v", healthHost, err)
	}
	if _, err := dsrlab(t, "recover", "real2", "--name", "hmh"); err != nil {
		t.Fatal(err)
	}
	waitRemoteStatus(t, "hmh", health.Up, katran(tcpVIP, "real2"))

	// The controller there crashes (its process killed, as pitfall 16
	// says a crash is): the engine there restarts the agent, and the
	// checks go on from what it kept.
	agent := "hmh-dsrlab-agent-" + healthHost
	pid := remoteDocker(t, "inspect", "-f", "{{.State.Pid}}", agent)
	// Detached: an attached exec in a container that dies under it can
	// hang the docker client.
	remoteDocker(t, "exec", "-d", agent, "kill", "-9", pid)
	deadline := time.Now().Add(60 * time.Second)
	for {
		restarts, _ := strconv.Atoi(remoteDocker(t, "inspect", "-f", "{{.RestartCount}}", agent))
		// State.Running stays true while the engine waits to restart it:
		// Status says "restarting" then.
		if restarts > 0 && remoteDocker(t, "inspect", "-f", "{{.State.Status}}", agent) == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not back: %s", remoteDocker(t, "inspect", "-f", "{{.State.Status}} {{.RestartCount}}", agent))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := dsrlab(t, "fail", "real3", "--name", "hmh", "--how", "kill"); err != nil {
		t.Fatal(err)
	}
	waitRemoteStatus(t, "hmh", health.Down, katran(tcpVIP, "real3"))
	if res := loadFromClient(t, "hmh-client", "--target", target, "--short", "200"); res.Failed() || res.PerReal["real3"] != 0 || res.PerReal["real2"] == 0 {
		t.Errorf("after the agent's restart, with real3 down: %s %v; want real3 out, real2 back", res.Summary(), res.Errors)
	}
	// inspect shows the other host's health, as its controller keeps it.
	if out, err := dsrlab(t, "inspect", "--name", "hmh"); err != nil || strings.Contains(out, "not running") || !regexp.MustCompile(`real3\s+down`).MatchString(out) {
		t.Errorf("inspect after the agent's restart (want real3 down, every controller running): %v\n%s", err, out)
	}

	// down: nothing on either host, the agent (and the health it kept
	// there) included.
	downLeavesNothing(t, remote, "hmh")
	topo, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, topo)
}
