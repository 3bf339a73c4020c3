package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/dsrlab/dsrlab/labs"
)

// traceOut is the part of `dsrlab trace --format json` the tests read.
type traceOut struct {
	Hops []struct {
		Step         string `json:"step"`
		From         string `json:"from"`
		To           string `json:"to"`
		SeenOut      bool   `json:"seen_out"`
		SeenIn       bool   `json:"seen_in"`
		Decapsulated bool   `json:"decapsulated"`
		IP           []struct {
			Src      string `json:"src"`
			Dst      string `json:"dst"`
			Proto    int    `json:"proto"`
			DstPort  int    `json:"dst_port"`
			TCPFlags string `json:"tcp_flags"`
		} `json:"ip"`
	} `json:"hops"`
	Drops []struct {
		Node   string `json:"node"`
		Reason string `json:"reason"`
	} `json:"drops"`
	NotUp    []string `json:"not_up"`
	DropsOff string   `json:"drops_unavailable"`
	Verdict  struct {
		Pass       bool   `json:"pass"`
		Path       string `json:"path"`
		AnsweredBy string `json:"answered_by"`
		Node       string `json:"node"`
		Summary    string `json:"summary"`
	} `json:"verdict"`
}

// trace runs `dsrlab trace ARGS --format json` and returns what it said
// and its exit code.
func trace(t *testing.T, args ...string) (traceOut, int) {
	t.Helper()
	cmd := exec.Command(dsrlabBin, append([]string{"trace", "--format", "json"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("trace %s: %v", strings.Join(args, " "), err)
	}
	var out traceOut
	if jerr := json.Unmarshal(stdout.Bytes(), &out); jerr != nil {
		t.Fatalf("trace %s (exit %d): %v\n%s%s", strings.Join(args, " "), code, jerr, stdout.String(), stderr.String())
	}
	t.Logf("trace %s: exit %d: %s", strings.Join(args, " "), code, out.Verdict.Summary)
	if out.DropsOff != "" {
		t.Logf("kernel drops not watched: %s", out.DropsOff)
	}
	return out, code
}

// writeLab writes a lab file into dir, renamed so that it runs beside
// every other test's, with the replacements old→new applied.
func writeLab(t *testing.T, dir string, data []byte, name, prefix string, repl ...string) string {
	t.Helper()
	text := string(data)
	for i := 0; i+1 < len(repl); i += 2 {
		if !strings.Contains(text, repl[i]) {
			t.Fatalf("lab has no %q", repl[i])
		}
		text = strings.Replace(text, repl[i], repl[i+1], 1)
	}
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "name:"):
			l = "name: " + name
		case strings.HasPrefix(l, "prefix:"):
			l = `prefix: "` + prefix + `"`
		}
		lines = append(lines, l)
	}
	path := filepath.Join(dir, "lab.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// traceLab writes a lab (see writeLab) and brings it up; down is left to
// the test's end.
func traceLab(t *testing.T, data []byte, name, prefix string, repl ...string) string {
	t.Helper()
	return upLab(t, writeLab(t, t.TempDir(), data, name, prefix, repl...), name)
}

func upLab(t *testing.T, path, name string) string {
	t.Helper()
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", name).Run() })
	if out, err := dsrlab(t, "up", "-q", "-t", path); err != nil {
		t.Fatalf("up %s: %v\n%s", name, err, out)
	}
	return path
}

func checkClean(t *testing.T, out traceOut, code int, answeredBy string) {
	t.Helper()
	if code != 0 || !out.Verdict.Pass {
		t.Fatalf("exit %d, verdict %q: want a clean trace", code, out.Verdict.Summary)
	}
	if out.Verdict.AnsweredBy != answeredBy {
		t.Errorf("answered by %q, want %q", out.Verdict.AnsweredBy, answeredBy)
	}
}

// checkBroken wants a failed trace that stopped at node, with every
// phrase in its verdict.
func checkBroken(t *testing.T, out traceOut, code int, node string, phrases ...string) {
	t.Helper()
	if code != 1 || out.Verdict.Pass {
		t.Errorf("exit %d, pass %v: want exit 1 for a broken lab", code, out.Verdict.Pass)
	}
	if out.Verdict.Node != node {
		t.Errorf("the flow stopped at %q, want %q: %s", out.Verdict.Node, node, out.Verdict.Summary)
	}
	for _, p := range phrases {
		if !strings.Contains(out.Verdict.Summary, p) {
			t.Errorf("verdict %q\nlacks %q", out.Verdict.Summary, p)
		}
	}
}

func TestTraceReference(t *testing.T) {
	requireSetup(t)
	const name, prefix = "tr-e2e-ref", "tr-e2e-ref-"
	file := traceLab(t, labs.Reference, name, prefix)

	t.Run("clean", func(t *testing.T) {
		out, code := trace(t, "--name", name)
		checkClean(t, out, code, "real 10.111.222.11")
		if out.Verdict.Path != "direct return" {
			t.Errorf("path %q, want direct return", out.Verdict.Path)
		}
		// The SYN's way there and the SYN-ACK's way back: the reference
		// README's six steps, in order.
		want := []struct{ step, from, to string }{
			{"Request", "client:eth0", "router:eth2"},
			{"Forward", "router:eth0", "katran:eth0"},
			{"IPIP Encap", "katran:eth0", "router:eth0"},
			{"Forward IPIP", "router:eth1", "real:eth0"},
			{"DSR Reply", "real:eth0", "router:eth1"},
			{"Return", "router:eth2", "client:eth0"},
		}
		if len(out.Hops) < len(want) {
			t.Fatalf("%d hops, want at least %d", len(out.Hops), len(want))
		}
		for i, w := range want {
			h := out.Hops[i]
			if h.Step != w.step || h.From != w.from || h.To != w.to {
				t.Errorf("hop %d: %s %s → %s, want %s %s → %s", i+1, h.Step, h.From, h.To, w.step, w.from, w.to)
			}
		}
		if h := out.Hops[0]; len(h.IP) != 1 || h.IP[0].Src != clientIP || h.IP[0].Dst != vip || h.IP[0].TCPFlags != "S" {
			t.Errorf("Request %+v, want the client's SYN to the VIP", h.IP)
		}
		// XDP_TX is invisible on katran: the encapsulated SYN is seen
		// arriving at the router only.
		if h := out.Hops[2]; h.SeenOut || !h.SeenIn {
			t.Errorf("IPIP Encap seen out %v in %v, want only in (at the router)", h.SeenOut, h.SeenIn)
		}
		for _, i := range []int{2, 3} {
			ip := out.Hops[i].IP
			if len(ip) != 2 || ip[0].Src != "10.111.221.11" || ip[0].Dst != "10.111.222.11" || ip[0].Proto != 4 ||
				ip[1].Src != clientIP || ip[1].Dst != vip || ip[1].DstPort != 50007 {
				t.Errorf("hop %d headers %+v, want outer 10.111.221.11 > 10.111.222.11 IPIP, inner %s > %s:50007", i+1, ip, clientIP, vip)
			}
		}
		if h := out.Hops[4]; len(h.IP) != 1 || h.IP[0].Src != vip || h.IP[0].TCPFlags != "S." {
			t.Errorf("DSR Reply %+v, want the SYN-ACK from the VIP", h.IP)
		}
		if out.DropsOff != "" {
			t.Errorf("kernel drops not watched: %s", out.DropsOff)
		}
	})

	// A trace that cannot test the path never passes: the real answers
	// its own probe on lo, the balancer gets its answers back by design.
	// Nor does a port or protocol the VIP does not have stand for another.
	t.Run("refused", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--from", "real"}, "real is a real of VIP 192.168.10.1:50007/tcp and holds the VIP on its lo"},
			{[]string{"--from", "katran"}, "katran is the balancer of VIP 192.168.10.1:50007/tcp"},
			{[]string{vip + ":0"}, "port 0 is no port to probe"},
			{[]string{vip, "--proto", "udp"}, "VIP 192.168.10.1:50007/tcp is TCP, not UDP"},
		} {
			out, err := dsrlab(t, append([]string{"trace", "--name", name}, c.args...)...)
			if err == nil || !strings.Contains(out, c.want) || strings.Contains(out, "PASS") {
				t.Errorf("trace %s: %v\n%s\nwant a failure saying %q", strings.Join(c.args, " "), err, out, c.want)
			}
		}
	})

	t.Run("mermaid", func(t *testing.T) {
		got, err := exec.Command(dsrlabBin, "trace", "--name", name, "--format", "mermaid").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"sequenceDiagram\n", "participant p0 as client", "p2-->>p1: 3. IPIP Encap (eth0 → eth0)", "PASS: answered by real"} {
			if !strings.Contains(string(got), w) {
				t.Errorf("mermaid lacks %q:\n%s", w, got)
			}
		}
	})

	// Each break is undone by `up`, which redoes what is missing; a clean
	// trace after it proves the lab whole again for the next one.
	repair := func(t *testing.T) {
		t.Helper()
		if out, err := dsrlab(t, "up", "-q", "-t", file); err != nil {
			t.Fatalf("up to repair: %v\n%s", err, out)
		}
		out, code := trace(t, "--name", name)
		checkClean(t, out, code, "real 10.111.222.11")
	}

	t.Run("VIP removed from the real's lo", func(t *testing.T) {
		ns := nodeNS(t, prefix+"real")
		err := ns.Do(func() error {
			lo, err := netlink.LinkByName("lo")
			if err != nil {
				return err
			}
			return netlink.AddrDel(lo, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(vip), Mask: net.CIDRMask(32, 32)}})
		})
		ns.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer repair(t)
		out, code := trace(t, "--name", name)
		// The real either forwards the request on (a loop until its TTL
		// runs out) or drops it: either way the kernel says so there.
		checkBroken(t, out, code, "real", "reached real eth0", "no reply left real", "kernel: real eth0: ")
	})

	t.Run("decap program detached", func(t *testing.T) {
		ns := nodeNS(t, prefix+"real")
		x, err := ns.XDP("eth0")
		if err == nil && x.ProgID == 0 {
			ns.Close()
			t.Skip("the real decapsulates with the kernel's ipip device, not an XDP program")
		}
		if err == nil {
			err = ns.DetachXDP("eth0", x.Mode)
		}
		ns.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer repair(t)
		out, code := trace(t, "--name", name)
		checkBroken(t, out, code, "real", "reached real eth0 still encapsulated (IPIP)",
			"real should have decapsulated it", "real eth0: IP_NOPROTO")
	})

	t.Run("real's link down", func(t *testing.T) {
		ns := nodeNS(t, prefix+"real")
		err := ns.Do(func() error {
			l, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			return netlink.LinkSetDown(l)
		})
		ns.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer repair(t)
		out, code := trace(t, "--name", name)
		checkBroken(t, out, code, "router", "not up: ", "real:eth0 down", "router:eth1 no carrier")
		if !slices.Contains(out.NotUp, "real:eth0 down") {
			t.Errorf("interfaces not up %q, want real:eth0 down among them", out.NotUp)
		}
	})

	t.Run("router's VIP route removed", func(t *testing.T) {
		ns := nodeNS(t, prefix+"router")
		err := ns.Do(func() error {
			return netlink.RouteDel(&netlink.Route{Dst: &net.IPNet{IP: net.ParseIP(vip).To4(), Mask: net.CIDRMask(32, 32)}})
		})
		ns.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer repair(t)
		out, code := trace(t, "--name", name)
		checkBroken(t, out, code, "router", "reached router eth2",
			"router should have forwarded the request towards 192.168.10.1 (katran serves it)", "kernel: router eth2: ")
	})
}

// A balancer of the user's own that drops, then aborts, every IPv4
// packet (ARP still passes, so the router reaches it).
const verdictProgram = `#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("xdp")
int xdp_verdict(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	return VERDICT;
}

char _license[] SEC("license") = "GPL";
`

func TestTraceBalancerVerdicts(t *testing.T) {
	requireSetup(t)
	const name = "tr-e2e-xdp"
	dir := t.TempDir()
	src := filepath.Join(dir, "verdict.c")
	write := func(verdict string) {
		if err := os.WriteFile(src, []byte(strings.Replace(verdictProgram, "VERDICT", verdict, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("XDP_DROP")
	file := writeLab(t, dir, labs.Reference, name, "tr-e2e-xdp-",
		"  katran: {kind: katran}", "  katran: {kind: katran, program: {source: verdict.c}}")
	upLab(t, file, name)

	out, code := trace(t, "--name", name)
	checkBroken(t, out, code, "katran", "left router eth0 for katran eth0, not seen arriving",
		"katran eth0: XDP program xdp_verdict dropped it (XDP_DROP")

	write("XDP_ABORTED")
	if out, err := dsrlab(t, "up", "-q", "-t", file); err != nil {
		t.Fatalf("up with the aborting program: %v\n%s", err, out)
	}
	out, code = trace(t, "--name", name)
	checkBroken(t, out, code, "katran", "katran eth0: XDP program xdp_verdict returned XDP_ABORTED")
}

// The other shipped labs: NAT's hair-pin is what it should do, a UDP VIP
// on three reals names the one that answered, and a user's own balancer
// is traced like the built-in one.
func TestTraceOtherLabs(t *testing.T) {
	requireSetup(t)
	t.Run("NAT", func(t *testing.T) {
		traceLab(t, labs.NAT, "tr-e2e-nat", "tr-e2e-nat-")
		out, code := trace(t, "--name", "tr-e2e-nat")
		checkClean(t, out, code, "real 10.111.222.11")
		var steps []string
		for _, h := range out.Hops[:min(8, len(out.Hops))] {
			steps = append(steps, h.Step)
		}
		want := "Request,Forward,DNAT + SNAT,Forward,Reply,Hair-pin,Final Reply,Return"
		if strings.Join(steps, ",") != want || out.Verdict.Path != "hair-pin (NAT)" {
			t.Errorf("steps %s, path %q; want %s, hair-pin (NAT)", strings.Join(steps, ","), out.Verdict.Path, want)
		}
	})
	t.Run("UDP VIP on three reals", func(t *testing.T) {
		data, err := os.ReadFile("../labs/dsr-3reals.yaml")
		if err != nil {
			t.Fatal(err)
		}
		traceLab(t, data, "tr-e2e-3r", "tr-e2e-3r-")
		out, code := trace(t, "--name", "tr-e2e-3r", "192.168.10.2")
		if code != 0 || !out.Verdict.Pass || !strings.HasPrefix(out.Verdict.AnsweredBy, "real") {
			t.Fatalf("exit %d, verdict %q: want a clean trace naming the real", code, out.Verdict.Summary)
		}
		real := strings.Fields(out.Verdict.AnsweredBy)[0]
		if len(out.Hops) != 6 || out.Hops[3].To != real+":eth0" || out.Hops[4].From != real+":eth0" || out.Hops[0].IP[0].Proto != 17 {
			t.Errorf("hops %+v: want the six steps of one datagram through %s", out.Hops, real)
		}
	})
	t.Run("own XDP program", func(t *testing.T) {
		file, _ := copyExample(t, "xdp-lb-minimal", "tr-e2e-own", "tr-e2e-own-")
		upLab(t, file, "tr-e2e-own")
		out, code := trace(t, "--name", "tr-e2e-own")
		checkClean(t, out, code, "real 10.111.222.11")
		// That program's outer source is the VIP, not katran's address.
		if ip := out.Hops[2].IP; out.Hops[2].Step != "IPIP Encap" || len(ip) != 2 || ip[0].Src != vip {
			t.Errorf("hop 3 %s %+v, want IPIP Encap from the VIP", out.Hops[2].Step, ip)
		}
	})
}
