package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/labs"
	"github.com/dsrlab/dsrlab/topology"
)

const (
	vip      = "192.168.10.1"
	vipPort  = "50007"
	clientIP = "10.111.220.11"
	bulkSize = 10 << 20
)

func dsrlab(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(dsrlabBin, args...).CombinedOutput()
	t.Logf("dsrlab %s:\n%s", strings.Join(args, " "), out)
	return string(out), err
}

// referenceWith writes the reference lab with one line changed.
func referenceWith(t *testing.T, old, new string) string {
	t.Helper()
	text := string(labs.Reference)
	if !strings.Contains(text, old) {
		t.Fatalf("reference lab has no %q", old)
	}
	path := filepath.Join(t.TempDir(), "lab.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(text, old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// dockerExec is the user's own check, `docker exec -i CONTAINER ...`.
func dockerExec(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append([]string{"exec", "-i"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker exec %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nodeNS opens the network namespace of a lab container. The caller must
// close it before checking that down freed everything: an open handle keeps
// the namespace, its veths and their XDP programs alive.
func nodeNS(t *testing.T, container string) *netconf.Namespace {
	t.Helper()
	ns, err := engine.Namespace(context.Background(), container)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func labContainers(t *testing.T, name string) []runtime.Container {
	t.Helper()
	list, err := engine.List(context.Background(), map[string]string{lab.LabelLab: name})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func TestReferenceLab(t *testing.T) {
	requireSetup(t)
	for _, mode := range []string{"native", "generic"} {
		t.Run(mode, func(t *testing.T) { testReferenceLab(t, mode) })
	}
}

func testReferenceLab(t *testing.T, mode string) {
	file := referenceWith(t, "katran: {kind: katran}", "katran: {kind: katran, xdp: "+mode+"}")
	topo, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	out, err := dsrlab(t, "up", "-t", file)
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", topo.Name).Run() })
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	if !strings.Contains(out, "katran: "+mode) {
		t.Errorf("summary does not report XDP mode %s", mode)
	}

	katran, router, real := nodeNS(t, "katran"), nodeNS(t, "router"), nodeNS(t, "real")
	closeNS := func() {
		for _, ns := range []*netconf.Namespace{katran, router, real} {
			ns.Close()
		}
	}
	defer func() {
		if closeNS != nil {
			closeNS()
		}
	}()
	progIDs := checkAttachments(t, mode, katran, router, real)

	t.Run("echo through the VIP", func(t *testing.T) {
		got := dockerExec(t, "hello\n", "client", "nc", vip, vipPort)
		want := regexp.MustCompile(`^\[real 10\.111\.222\.11\] \('` + regexp.QuoteMeta(clientIP) + `', \d+\): hello\n$`)
		if !want.MatchString(got) {
			t.Errorf("answer %q does not match %s: the real must answer and see the client's own address", got, want)
		}
	})

	t.Run("bulk transfer and direct return", func(t *testing.T) {
		katranBefore, realBefore := stats(t, katran, "eth0"), stats(t, real, "eth0")
		got := dockerExec(t, "", "client", "sh", "-c",
			"head -c "+strconv.Itoa(bulkSize)+" /dev/zero | nc "+vip+" "+vipPort+" | wc -c")
		n, err := strconv.Atoi(strings.TrimSpace(got))
		if err != nil {
			t.Fatalf("wc -c said %q", got)
		}
		// The answer is the prefix plus every byte sent: a lost 1520-byte
		// encapsulated segment (MTU blackhole) would stall this instead.
		if n < bulkSize {
			t.Fatalf("got %d bytes back through the VIP, want at least %d", n, bulkSize)
		}
		katranAfter, realAfter := stats(t, katran, "eth0"), stats(t, real, "eth0")
		katranRx := katranAfter.RxBytes - katranBefore.RxBytes
		katranTx := katranAfter.TxBytes - katranBefore.TxBytes
		realTx := realAfter.TxBytes - realBefore.TxBytes
		t.Logf("katran eth0 rx %d tx %d bytes; real eth0 tx %d bytes; payload %d each way", katranRx, katranTx, realTx, bulkSize)
		// Requests cross katran (in and back out encapsulated)...
		if katranRx < bulkSize || katranTx < bulkSize {
			t.Errorf("katran saw rx %d / tx %d bytes, want at least the %d request bytes each way", katranRx, katranTx, bulkSize)
		}
		// ...replies do not: had the 10 MB answer crossed katran, its counters
		// would show twice the payload.
		if limit := uint64(bulkSize) * 3 / 2; katranRx > limit || katranTx > limit {
			t.Errorf("katran saw rx %d / tx %d bytes, more than %d: replies crossed the balancer", katranRx, katranTx, limit)
		}
		if realTx < bulkSize {
			t.Errorf("real sent %d bytes, want the %d-byte answer to leave it directly", realTx, bulkSize)
		}
	})

	closeNS()
	closeNS = nil
	if _, err := dsrlab(t, "down", "-t", file); err != nil {
		t.Fatalf("down: %v", err)
	}
	checkGone(t, topo, progIDs)
}

// checkAttachments reads the kernel's view: the balancer on katran in the
// wanted mode, the native-mode stub on the router's side of katran's link,
// and decap on the real. It returns the program IDs for the leak check.
func checkAttachments(t *testing.T, mode string, katran, router, real *netconf.Namespace) []uint32 {
	t.Helper()
	lb, err := katran.XDP("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if lb.Mode.String() != mode {
		t.Errorf("katran eth0: XDP mode %s, want %s", lb.Mode, mode)
	}
	stub, err := router.XDP("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if mode == "native" && stub.Mode != netconf.XDPNative {
		t.Errorf("router eth0 (katran's peer): no native XDP stub; native XDP_TX into it would be dropped")
	}
	decap, err := real.XDP("eth0")
	if err != nil {
		t.Fatal(err)
	}
	ids := []uint32{lb.ProgID, stub.ProgID, decap.ProgID}
	if decap.ProgID == 0 {
		t.Log("real eth0 has no XDP program: decapsulation uses the kernel's ipip device")
		ids = ids[:2]
	}
	return ids
}

func stats(t *testing.T, ns *netconf.Namespace, ifname string) *netlink.LinkStatistics {
	t.Helper()
	s, err := ns.Stats(ifname)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkGone verifies that down left nothing of the lab (assertNothingLeft)
// and that its XDP programs are unloaded. The kernel frees them shortly
// after their namespaces, hence the wait.
func checkGone(t *testing.T, topo *topology.Topology, progIDs []uint32) {
	t.Helper()
	assertNothingLeft(t, topo)
	deadline := time.Now().Add(15 * time.Second)
	for _, id := range progIDs {
		for {
			p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
			if err != nil {
				break
			}
			p.Close()
			if time.Now().After(deadline) {
				t.Errorf("XDP program %d is still loaded after down", id)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if _, err := os.Stat("/sys/fs/bpf/dsrlab"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/sys/fs/bpf/dsrlab exists: dsrlab pins nothing, yet something is there")
	}
}

func TestFailedUpRollsBack(t *testing.T) {
	requireSetup(t)
	file := referenceWith(t, "name: dsr\nprefix: \"\"", "name: rollback\nprefix: \"rb-\"")
	text, _ := os.ReadFile(file)
	// The last step fails: everything before it must be undone.
	text = bytes.Replace(text, []byte("client: {kind: client}"), []byte(`client: {kind: client, exec: ["exit 3"]}`), 1)
	if err := os.WriteFile(file, text, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := dsrlab(t, "up", "-t", file)
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", "rollback").Run() })
	if err == nil {
		t.Fatal("up succeeded although an exec command fails")
	}
	for _, want := range []string{"exec: node client", "exited 3", "Rolled back"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not mention %q", want)
		}
	}
	if left := labContainers(t, "rollback"); len(left) > 0 {
		t.Errorf("failed up left %d containers, e.g. %s", len(left), left[0].Name)
	}
}

func TestForeignContainerIsNeverTouched(t *testing.T) {
	requireSetup(t)
	ctx := context.Background()
	// Make sure the default image exists, then squat on a node's name.
	if _, err := dsrlab(t, "image", "build"); err != nil {
		t.Fatal(err)
	}
	foreign, err := engine.Run(ctx, runtime.ContainerSpec{
		Name: "clash-router", Image: topology.DefaultImage,
		Cmd: []string{"/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Remove(ctx, foreign.ID)

	file := referenceWith(t, "name: dsr\nprefix: \"\"", "name: clash\nprefix: \"clash-\"")
	out, err := dsrlab(t, "up", "-t", file)
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", "clash").Run() })
	if err == nil {
		t.Fatal("up succeeded over a foreign container")
	}
	if !strings.Contains(out, `"clash-router" already exists and was not created by dsrlab`) {
		t.Errorf("error does not name the clash and its owner")
	}
	if c, err := engine.Inspect(ctx, foreign.ID); err != nil || c.State != "running" {
		t.Errorf("foreign container was touched: %v, %v", c, err)
	}
	if left := labContainers(t, "clash"); len(left) > 0 {
		t.Errorf("refused up left %d containers", len(left))
	}
}

func TestDownOfAbsentLabIsFine(t *testing.T) {
	requireSetup(t)
	for range 2 {
		out, err := dsrlab(t, "down", "--name", "never-was-up")
		if err != nil || !strings.Contains(out, "nothing to remove") {
			t.Fatalf("down of an absent lab: %v\n%s", err, out)
		}
	}
}

func TestValidateNamesFileAndLine(t *testing.T) {
	requireSetup(t)
	file := referenceWith(t, `ipv4: ["10.111.221.12/24", "10.111.221.11/24"]`, `ipv4: ["10.111.221.12/24", "10.111.221.300/24"]`)
	out, err := dsrlab(t, "validate", "-t", file)
	if err == nil {
		t.Fatal("validate accepted a bad CIDR")
	}
	if !regexp.MustCompile(regexp.QuoteMeta(file) + `:\d+:\d+: links\[1\]\.ipv4\[1\]`).MatchString(out) {
		t.Errorf("error does not name file:line:col and the field")
	}
}
