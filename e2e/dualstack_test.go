package e2e

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/topology"
)

// TestDualStackLab: the reference lab on both families with two reals. The
// IPv6 VIP is answered through IPv6-in-IPv6 by both reals, which name
// themselves and the client in IPv6 form; a bulk echo completes; the
// replies skip the balancer; a drained real gets no new IPv6 flows.
func TestDualStackLab(t *testing.T) {
	requireSetup(t)
	const file = "../labs/dsr-dualstack.yaml"
	topo, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", topo.Name).Run() })
	if _, err := dsrlab(t, "up", "-t", file); err != nil {
		t.Fatalf("up: %v", err)
	}
	const vip6, target6 = "fd00:10::1", "[fd00:10::1]:50007"

	want := regexp.MustCompile(`^\[real[12] fd00:22[23]::11\] \('fd00:220::11', \d+\): hello\n$`)
	if got := dockerExec(t, "hello\n", "ds-client", "nc", vip6, vipPort); !want.MatchString(got) {
		t.Errorf("answer %q does not match %s", got, want)
	}
	res := loadFromClient(t, "ds-client", "--target", target6, "--short", "100")
	if res.Failed() || res.PerReal["real1"] == 0 || res.PerReal["real2"] == 0 {
		t.Errorf("100 IPv6 connections: %s; want both reals to answer", res.Summary())
	}
	if out, err := dsrlab(t, "verify", "--name", topo.Name); err != nil {
		t.Errorf("verify (both families, DSR by counters): %v\n%s", err, out)
	}

	const size = 4 << 20
	got := dockerExec(t, "", "ds-client", "sh", "-c", fmt.Sprintf("head -c %d /dev/zero | nc %s %s | wc -c", size, vip6, vipPort))
	if n, err := strconv.Atoi(strings.TrimSpace(got)); err != nil || n < size {
		t.Errorf("bulk echo through the IPv6 VIP returned %q bytes, want at least %d", got, size)
	}

	if _, err := dsrlab(t, "real", "drain", "--name", topo.Name, target6+"/tcp", "real2"); err != nil {
		t.Fatal(err)
	}
	res = loadFromClient(t, "ds-client", "--target", target6, "--short", "50")
	if res.Failed() || res.PerReal["real2"] != 0 {
		t.Errorf("after draining real2: %s; want no new IPv6 flow on it", res.Summary())
	}
	if got := dockerExec(t, "", "ds-client", "ping", "-c", "1", "-W", "2", vip6); !strings.Contains(got, "1 packets received") {
		t.Errorf("ping %s: %s", vip6, got)
	}
}
