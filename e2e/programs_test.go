package e2e

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/examples"
	"github.com/dsrlab/dsrlab/topology"
)

// copyExample writes examples/NAME into a temporary directory, renamed so
// that it runs beside whatever else the suite brings up, and returns its
// topology file.
func copyExample(t *testing.T, name, labName, prefix string) (string, *topology.Topology) {
	t.Helper()
	if _, err := exec.LookPath("clang"); err != nil {
		t.Fatalf("clang is needed to compile the examples: %v", err)
	}
	dir := t.TempDir()
	if err := examples.Write(name, dir); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	file := writeLab(t, dir, data, labName, prefix)
	topo, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", labName).Run() })
	return file, topo
}

// TestOwnMinimalBalancer is the tutorial reader's path: their C file on
// katran, compiled and configured by up, answered through the VIP, shown by
// map and inspect, replaced after an edit.
func TestOwnMinimalBalancer(t *testing.T) {
	requireSetup(t)
	file, _ := copyExample(t, "xdp-lb-minimal", "own-min", "om-")
	out, err := dsrlab(t, "up", "-t", file)
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	if !strings.Contains(out, "xdp_load_balancer") {
		t.Errorf("up does not name the user's program:\n%s", out)
	}
	want := regexp.MustCompile(`^\[real 10\.111\.222\.11\] \('10\.111\.220\.11', \d+\): hello\n$`)
	if got := dockerExec(t, "hello\n", "om-client", "nc", vip, vipPort); !want.MatchString(got) {
		t.Errorf("answer %q does not match %s", got, want)
	}
	if _, err := dsrlab(t, "verify", "--name", "own-min"); err != nil {
		t.Errorf("verify of a lab running the user's balancer: %v", err)
	}
	out, err = dsrlab(t, "map", "--name", "own-min", "katran", "lb_map")
	if err != nil || !strings.Contains(out, "real_server_ip: 10.111.222.11") || !strings.Contains(out, "lb_vip: 192.168.10.1") {
		t.Errorf("map katran lb_map: %v\n%s", err, out)
	}
	out, err = dsrlab(t, "inspect", "--name", "own-min", "--format", "json")
	if err != nil || !strings.Contains(out, `"name": "xdp_load_balancer"`) || !strings.Contains(out, "xdp_lb.c") {
		t.Errorf("inspect does not show the user's program: %v\n%s", err, out)
	}
	// The node's maps listed, not dumped; a node without a program, stats
	// and real on a lab whose balancer is the user's: errors saying why.
	out, err = dsrlab(t, "map", "--name", "own-min", "katran")
	if err != nil || !regexp.MustCompile(`lb_map\s+Array\s+__u32\s+struct config\s+1\s+1\s`).MatchString(out) {
		t.Errorf("map katran (want lb_map listed: type, key, value, size, in use): %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"map", "--name", "own-min", "client"}, "node client has no XDP or TC program with maps"},
		{[]string{"stats", "--name", "own-min"}, "katran runs your own program (xdp_lb.c)"},
		{[]string{"real", "drain", "--name", "own-min", vip + ":" + vipPort, "real"}, "balanced by katran's own program"},
	} {
		if out, err := dsrlab(t, tc.args...); err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("dsrlab %s: %v, want an error saying %q\n%s", strings.Join(tc.args, " "), err, tc.want, out)
		}
	}

	src := filepath.Join(filepath.Dir(file), "xdp_lb.c")
	code, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, []byte(strings.Replace(string(code), "ttl = 64", "ttl = 63", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = dsrlab(t, "up", "-t", file)
	if err != nil {
		t.Fatalf("up after an edit: %v\n%s", err, out)
	}
	if strings.Contains(out, "nothing changed") {
		t.Error("up after an edit of the program changed nothing")
	}
	if got := dockerExec(t, "again\n", "om-client", "nc", vip, vipPort); !strings.Contains(got, "): again") {
		t.Errorf("after the reload the VIP answered %q", got)
	}
	out, err = dsrlab(t, "up", "-t", file)
	if err != nil || !strings.Contains(out, "nothing changed") {
		t.Errorf("a second up of an unchanged program: %v\n%s", err, out)
	}
}

// TestOwnHashBalancerMapSet moves every flow to one real by changing the
// user's map with `dsrlab map ... set`.
func TestOwnHashBalancerMapSet(t *testing.T) {
	requireSetup(t)
	file, _ := copyExample(t, "xdp-lb-hash", "own-hash", "oh-")
	if _, err := dsrlab(t, "up", "-t", file); err != nil {
		t.Fatalf("up: %v", err)
	}
	for _, k := range []string{"0", "1", "2"} {
		if _, err := dsrlab(t, "map", "--name", "own-hash", "katran", "reals", "set", k, "{addr: real3:eth0}"); err != nil {
			t.Fatalf("map set: %v", err)
		}
	}
	for i := range 5 {
		got := dockerExec(t, "hi\n", "oh-client", "nc", vip, vipPort)
		if realOf(got) != "real3" {
			t.Errorf("connection %d after map set answered by %q (%q)", i, realOf(got), got)
		}
	}
	out, err := dsrlab(t, "map", "--name", "own-hash", "katran", "real_stats", "--format", "json")
	if err != nil || !strings.Contains(out, `"values"`) || !strings.Contains(out, `"sum"`) {
		t.Errorf("per-CPU map dump: %v\n%s", err, out)
	}
}

// TestOwnProgramBadInput: every mistake fails up with the tool's own words
// and the file position, before any container exists.
func TestOwnProgramBadInput(t *testing.T) {
	requireSetup(t)
	for _, tc := range []struct {
		name  string
		lab   func(string) string // edits lab.yaml
		code  func(string) string // edits xdp_lb.c
		env   []string
		wants []string
	}{
		{name: "compile error", code: func(c string) string { return c + "\nint broken(void) { return nothing; }\n" },
			wants: []string{"lab.yaml:24:", "xdp_lb.c:", "error: use of undeclared identifier 'nothing'"}},
		{name: "clang missing", env: []string{"PATH=/nonexistent"},
			wants: []string{"clang not found", "apt-get install clang", "object:"}},
		{name: "object without BTF", lab: func(l string) string { return strings.Replace(l, "source: xdp_lb.c", "object: nobtf.o", 1) },
			wants: []string{"compile with -g"}},
		{name: "program absent", lab: func(l string) string { return strings.Replace(l, "name: xdp_load_balancer", "name: nope", 1) },
			wants: []string{`"nope"`, "xdp_load_balancer"}},
		{name: "map absent", lab: func(l string) string { return strings.Replace(l, "        lb_map:", "        lb_maps:", 1) },
			wants: []string{"lb_maps", "its maps: lb_map"}},
		{name: "field absent", lab: func(l string) string { return strings.Replace(l, "lb_vip:", "vip:", 1) },
			wants: []string{"lab.yaml:31:", `no field "vip"`, "real_server_ip, lb_vip, src_mac, dst_mac"}},
		{name: "value does not fit", lab: func(l string) string {
			return strings.Replace(l, "src_mac: katran:eth0", "src_mac: 0x1234567890123456", 1)
		},
			wants: []string{"lab.yaml:32:", "src_mac"}},
		{name: "reference to nothing", lab: func(l string) string { return strings.Replace(l, "dst_mac: router:eth0", "dst_mac: router:eth7", 1) },
			wants: []string{"lab.yaml:33:", `no interface "eth7"`}},
		{name: "verifier rejection", code: func(c string) string {
			return strings.Replace(c, "if ((void *)(eth + 1) > data_end)", "if (0)", 1)
		}, wants: []string{"verifier", "xdp_lb.c:", "invalid access to packet"}},
		{name: "both source and object", lab: func(l string) string {
			return strings.Replace(l, "source: xdp_lb.c", "source: xdp_lb.c\n      object: xdp_lb.o", 1)
		}, wants: []string{"lab.yaml:", "not both"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file, topo := copyExample(t, "xdp-lb-minimal", "own-bad", "ob-")
			dir := filepath.Dir(file)
			edit := func(path string, fn func(string) string) {
				if fn == nil {
					return
				}
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(fn(string(data))), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			edit(file, tc.lab)
			edit(filepath.Join(dir, "xdp_lb.c"), tc.code)
			if tc.name == "object without BTF" {
				build := exec.Command("clang", "-O2", "-target", "bpf", "-I"+filepath.Join("..", "bpf", "prog", "include"),
					"-idirafter", "/usr/include/x86_64-linux-gnu", "-c", filepath.Join(dir, "xdp_lb.c"), "-o", filepath.Join(dir, "nobtf.o"))
				if out, err := build.CombinedOutput(); err != nil {
					t.Fatalf("clang without -g: %v\n%s", err, out)
				}
			}
			cmd := exec.Command(dsrlabBin, "up", "-t", file)
			cmd.Env = append(os.Environ(), tc.env...)
			out, err := cmd.CombinedOutput()
			t.Logf("dsrlab up:\n%s", out)
			if err == nil {
				t.Fatal("up succeeded")
			}
			for _, w := range tc.wants {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q", w)
				}
			}
			assertNothingLeft(t, topo)
		})
	}
}

// TestPingTheVIP is a user's first check of a VIP: the balancer answers it.
func TestPingTheVIP(t *testing.T) {
	requireSetup(t)
	file, topo := renamed(t, "ping", "p-")
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", topo.Name).Run() })
	if _, err := dsrlab(t, "up", "-t", file); err != nil {
		t.Fatalf("up: %v", err)
	}
	got := dockerExec(t, "", "p-client", "ping", "-c", "1", "-W", "2", vip)
	if !strings.Contains(got, "1 packets received") {
		t.Errorf("ping %s: %s", vip, got)
	}
	if s := statsOf(t, topo.Name); s.EchoReplies < 1 {
		t.Errorf("stats: %d echo replies after a ping", s.EchoReplies)
	}
}

// TestCaptureOnKatran captures the encapsulated request where it is seen:
// on the router's side of katran's link (XDP_TX frames are not seen by
// AF_PACKET on the interface that sends them).
func TestCaptureOnKatran(t *testing.T) {
	requireSetup(t)
	file, topo := renamed(t, "capture", "c-")
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", topo.Name).Run() })
	if _, err := dsrlab(t, "up", "-t", file); err != nil {
		t.Fatalf("up: %v", err)
	}
	pcap := filepath.Join(t.TempDir(), "router.pcapng")
	capture, lines := startCapture(t, "capture", "--name", topo.Name, "-c", "2", "router", "proto", "4")
	written, _ := startCapture(t, "capture", "--name", topo.Name, "-w", pcap, "-c", "2", "router", "proto", "4")
	dockerExec(t, "hello\n", "c-client", "nc", vip, vipPort)
	if err := capture.Wait(); err != nil {
		t.Fatalf("capture: %v", err)
	}
	if err := written.Wait(); err != nil {
		t.Fatalf("capture -w: %v", err)
	}
	if !strings.Contains(lines.String(), "10.111.221.11 > 10.111.222.11") || !strings.Contains(lines.String(), "192.168.10.1.50007") {
		t.Errorf("decoded IPIP lines lack the outer or inner header:\n%s", lines.String())
	}
	data, err := os.ReadFile(pcap)
	if err != nil || len(data) < 4 || string(data[:4]) != "\x0a\x0d\x0d\x0a" {
		t.Errorf("capture -w of all the router's interfaces is not pcapng: %v", err)
	}
}

// startCapture starts `dsrlab capture ...` and returns once its sockets are
// open (it says "capturing on" then), with what it prints on stdout.
func startCapture(t *testing.T, args ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(dsrlabBin, args...)
	var stdout strings.Builder
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "capturing on") {
			go io.Copy(io.Discard, stderr)
			return cmd, &stdout
		}
		t.Logf("capture: %s", sc.Text())
	}
	t.Fatalf("capture ended before it started: %v", cmd.Wait())
	return nil, nil
}

// pmtuLab has a 1300-byte link between two routers on the way back to the
// client: the real's large replies (source: the VIP) make the router send
// "fragmentation needed" to the VIP, which only katran receives.
const pmtuLab = `name: pmtu
prefix: "mtu-"
nodes:
  client: {kind: client}
  edge:
    kind: router
    routes: [{dst: 0.0.0.0/0, via: 10.111.230.1}]
  router:
    kind: router
    routes: [{dst: 10.111.220.0/24, via: 10.111.230.2}]
  katran: {kind: katran}
  real: {kind: real}
links:
  - endpoints: ["client:eth0", "edge:eth0"]
    ipv4: ["10.111.220.11/24", "10.111.220.12/24"]
  - endpoints: ["edge:eth1", "router:eth2"]
    ipv4: ["10.111.230.2/24", "10.111.230.1/24"]
    mtu: 1300
  - endpoints: ["router:eth0", "katran:eth0"]
    ipv4: ["10.111.221.12/24", "10.111.221.11/24"]
  - endpoints: ["router:eth1", "real:eth0"]
    ipv4: ["10.111.222.12/24", "10.111.222.11/24"]
vips:
  - {address: 192.168.10.1, port: 50007, lb: katran, reals: [real]}
`

// TestPathMTUReachesTheReal: the balancer sends the router's
// "fragmentation needed" on to the real that owns the flow, so a large
// download through a smaller link completes instead of stalling.
func TestPathMTUReachesTheReal(t *testing.T) {
	requireSetup(t)
	file := filepath.Join(t.TempDir(), "pmtu.yaml")
	if err := os.WriteFile(file, []byte(pmtuLab), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", "pmtu").Run() })
	if _, err := dsrlab(t, "up", "-t", file); err != nil {
		t.Fatalf("up: %v", err)
	}
	const size = 3 << 20
	got := dockerExec(t, "", "mtu-client", "sh", "-c", "head -c "+strconv.Itoa(size)+" /dev/zero | nc "+vip+" "+vipPort+" | wc -c")
	if n, err := strconv.Atoi(strings.TrimSpace(got)); err != nil || n < size {
		t.Fatalf("got %q bytes back through a 1300-byte link, want at least %d", got, size)
	}
	if s := statsOf(t, "pmtu"); s.ICMPForwarded == 0 {
		t.Errorf("no ICMP forwarded to the real: %+v", s)
	}
}

// TestNamespacesAreNamed: like containerlab, every container's network
// namespace is reachable by name (`ip netns exec CONTAINER ...`) while the
// lab is up, and the names go with it.
func TestNamespacesAreNamed(t *testing.T) {
	requireSetup(t)
	file, topo := renamed(t, "named", "nm-")
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", topo.Name).Run() })
	if _, err := dsrlab(t, "up", "-t", file); err != nil {
		t.Fatalf("up: %v", err)
	}
	for _, n := range topo.Nodes {
		ns := nodeNS(t, n.ContainerName)
		want, err := os.Stat(ns.Path())
		ns.Close()
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.Stat(filepath.Join("/run/netns", n.ContainerName))
		if err != nil || !os.SameFile(got, want) {
			t.Errorf("/run/netns/%s does not name %s's namespace: %v", n.ContainerName, n.ContainerName, err)
		}
	}
	if _, err := dsrlab(t, "down", "--name", topo.Name); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, topo)
}

// TestUpSurvivesAClosedOutput: `dsrlab up | head -1` closes dsrlab's
// output at once; up must still build the whole lab and record it.
func TestUpSurvivesAClosedOutput(t *testing.T) {
	requireSetup(t)
	file, topo := renamed(t, "piped", "pp-")
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "--name", topo.Name).Run() })
	cmd := exec.Command(dsrlabBin, "up", "-v", "-t", file)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out.Read(make([]byte, 1)) // like head: read a little, then go away
	out.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("up with its output closed: %v (killed by SIGPIPE?)", err)
	}
	if _, err := dsrlab(t, "verify", "--name", topo.Name); err != nil {
		t.Errorf("the lab up wrote to a closed pipe does not verify: %v", err)
	}
}
