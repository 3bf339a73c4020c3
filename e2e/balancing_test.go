package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/load"
	"github.com/dsrlab/dsrlab/topology"
)

const threeReals = "../labs/dsr-3reals.yaml"

// loadFromClient runs the load generator inside a client container, as a
// user's own client program would run.
func loadFromClient(t *testing.T, container string, args ...string) *load.Result {
	t.Helper()
	out, err := exec.Command("docker", append([]string{"exec", container, "dsrlab", "load", "--json"}, args...)...).CombinedOutput()
	var res load.Result
	if jerr := json.Unmarshal([]byte(jsonPart(string(out))), &res); jerr != nil {
		t.Fatalf("load %v: %v / %v\n%s", args, err, jerr, out)
	}
	return &res
}

// TestThreeRealsWeightsAndDrain brings up three reals behind one VIP with
// weights 1:1:2 and checks the balance, then drains a real under a live
// connection.
func TestThreeRealsWeightsAndDrain(t *testing.T) {
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

	t.Run("300 connections follow the weights", func(t *testing.T) {
		const conns = 300
		res := loadFromClient(t, client, "--target", target, "--short", fmt.Sprint(conns))
		if res.Failed() {
			t.Fatalf("failures: %s %v", res.Summary(), res.Errors)
		}
		// Expected 75/75/150. Flows are spread by a hash of random source
		// ports, so each count is binomial; four standard deviations
		// (±30 of 75, ±35 of 150) leave a false failure at about 1 in 10^4.
		want := map[string]float64{"real1": 0.25, "real2": 0.25, "real3": 0.5}
		for real, share := range want {
			exp := share * conns
			tolerance := 4 * math.Sqrt(conns*share*(1-share))
			got := float64(res.PerReal[real])
			t.Logf("%s: %v connections, expected %v ±%.0f", real, got, exp, tolerance)
			if math.Abs(got-exp) > tolerance {
				t.Errorf("%s got %v of %d connections, want %v ±%.0f", real, got, conns, exp, tolerance)
			}
		}
	})

	t.Run("UDP VIP and DSR evidence", func(t *testing.T) {
		if out, err := dsrlab(t, "verify", "--name", topo.Name); err != nil {
			t.Fatalf("verify: %v\n%s", err, out)
		}
	})

	t.Run("drain keeps a live connection and steers new ones away", func(t *testing.T) {
		// A long connection from the client, held by an interactive nc.
		nc := exec.Command("docker", "exec", "-i", client, "nc", "192.168.10.1", "50007")
		stdin, _ := nc.StdinPipe()
		stdout, _ := nc.StdoutPipe()
		if err := nc.Start(); err != nil {
			t.Fatal(err)
		}
		defer nc.Process.Kill()
		lines := bufio.NewReader(stdout)
		say := func(s string) string {
			t.Helper()
			io.WriteString(stdin, s+"\n")
			done := make(chan string, 1)
			go func() { l, _ := lines.ReadString('\n'); done <- l }()
			select {
			case l := <-done:
				return l
			case <-time.After(10 * time.Second):
				t.Fatalf("no answer to %q on the long connection", s)
			}
			return ""
		}
		first := say("before")
		m := realOf(first)
		if m == "" {
			t.Fatalf("answer %q names no real", first)
		}
		if _, err := dsrlab(t, "real", "drain", "--name", topo.Name, target, m); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			if got := realOf(say(fmt.Sprint("during drain ", i))); got != m {
				t.Fatalf("line %d after the drain answered by %q, want %s (the established flow must stay)", i, got, m)
			}
			time.Sleep(20 * time.Millisecond)
		}
		res := loadFromClient(t, client, "--target", target, "--short", "100")
		if res.Failed() || res.PerReal[m] != 0 {
			t.Errorf("after draining %s: %s; want no new connection on it", m, res.Summary())
		}
		stats := statsOf(t, topo.Name)
		if stats.LRUHits == 0 {
			t.Errorf("stats show no LRU hits: %+v", stats)
		}
		io.WriteString(stdin, "bye\n")
		stdin.Close()
		// Re-adding restores the weight: new flows reach it again.
		if _, err := dsrlab(t, "real", "add", "--name", topo.Name, "--weight", "2", target, m); err != nil {
			t.Fatal(err)
		}
		if res := loadFromClient(t, client, "--target", target, "--short", "200"); res.Failed() || res.PerReal[m] == 0 {
			t.Errorf("after re-adding %s: %s", m, res.Summary())
		}
	})

	t.Run("remove moves new flows and is recorded", func(t *testing.T) {
		if _, err := dsrlab(t, "real", "remove", "--name", topo.Name, target, "real1"); err != nil {
			t.Fatal(err)
		}
		if res := loadFromClient(t, client, "--target", target, "--short", "100"); res.Failed() || res.PerReal["real1"] != 0 {
			t.Errorf("after removing real1: %s", res.Summary())
		}
		state, err := lab.LoadState(topo.Name)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := lab.FindVIP(state, target)
		for _, r := range v.Reals {
			if r.Node.Name == "real1" {
				t.Errorf("recorded topology still has real1 behind %s", target)
			}
		}
	})

	t.Run("up with the file applies its reals to the running balancer", func(t *testing.T) {
		out, err := dsrlab(t, "up", "-t", threeReals)
		if err != nil || !strings.Contains(out, "1 VIPs updated in place") {
			t.Fatalf("up: %v; want the file's reals restored in place", err)
		}
		var reports []lab.LabReport
		out, err = dsrlab(t, "inspect", "--name", topo.Name, "--format", "json")
		if err != nil || json.Unmarshal([]byte(jsonPart(out)), &reports) != nil {
			t.Fatalf("inspect: %v", err)
		}
		for _, n := range reports[0].Nodes {
			if n.Balancer == nil {
				continue
			}
			for _, v := range n.Balancer.VIPs {
				if v.VIP == target+"/tcp" && len(v.Reals) != 3 {
					t.Errorf("balancer has %v behind %s, want the file's three reals", v.Reals, target)
				}
			}
		}
	})
}

func realOf(answer string) string {
	if !strings.HasPrefix(answer, "[") {
		return ""
	}
	name, _, _ := strings.Cut(answer[1:], " ")
	return name
}

func statsOf(t *testing.T, name string) lab.BalancerStats {
	t.Helper()
	out, err := dsrlab(t, "stats", "--name", name, "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var stats []lab.BalancerStats
	if err := json.Unmarshal([]byte(jsonPart(out)), &stats); err != nil || len(stats) != 1 {
		t.Fatalf("stats json: %v", err)
	}
	return stats[0]
}

// TestNATLabHairpins checks the NAT baseline on both families: the same
// echo works on the IPv4 and the IPv6 VIP, the real sees the balancer's
// address of the VIP's family (SNAT), and verify reports the hair-pin for
// each VIP.
func TestNATLabHairpins(t *testing.T) {
	requireSetup(t)
	const file = "../labs/nat.yaml"
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", "nat").Run() })
	out, err := dsrlab(t, "up", "-t", file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "NAT         katran: nftables DNAT+SNAT, 2 VIPs") {
		t.Errorf("summary does not report the NAT balancer with both VIPs")
	}
	for _, c := range []struct{ vip, want string }{
		{vip, "[real 10.111.222.11] ('10.111.221.11', "},
		{"fd00:10::1", "[real fd00:222::11] ('fd00:221::11', "},
	} {
		if got := dockerExec(t, "hello\n", "nat-client", "nc", c.vip, vipPort); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s answered %q: want the real, seeing the balancer's address (SNAT): %q", c.vip, got, c.want)
		}
	}
	var checks []lab.Check
	out, err = dsrlab(t, "verify", "--name", "nat", "--format", "json")
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	if err := json.Unmarshal([]byte(jsonPart(out)), &checks); err != nil || len(checks) != 2 {
		t.Fatalf("verify json: %v, %d checks, want one per VIP", err, len(checks))
	}
	for _, c := range checks {
		if !c.Pass || c.Path != "through the balancer" || c.Mode != "nat" {
			t.Errorf("verify = %+v, want a passing hair-pin", c)
		}
	}
	if v := []string{checks[0].VIP, checks[1].VIP}; !strings.HasPrefix(v[0], vip+":") || !strings.HasPrefix(v[1], "[fd00:10::1]:") {
		t.Errorf("verify checked %v, want the IPv4 and the IPv6 VIP", v)
	}
}
