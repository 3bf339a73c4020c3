package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// run executes dsrlab in-process, as a user would invoke it.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run with -update if the change is intended):\n%s", name, got)
	}
}

func TestStableOutputsMatchGoldenFiles(t *testing.T) {
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"graph-dsr.mmd", []string{"graph"}},
		{"graph-dsr.dot", []string{"graph", "--format", "dot"}},
		{"graph-nat.mmd", []string{"graph", "-t", "../../labs/nat.yaml"}},
		{"validate-dsr-resolved.yaml", []string{"validate", "--resolved"}},
		{"validate-3reals.txt", []string{"validate", "-t", "../../labs/dsr-3reals.yaml"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			out, err := run(t, tc.args...)
			if err != nil {
				t.Fatalf("dsrlab %s: %v", strings.Join(tc.args, " "), err)
			}
			golden(t, tc.golden, out)
		})
	}
}

func TestValidateReportsEveryError(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte(`name: Bad_Name
nodes:
  client: {kind: client}
  router: {kind: router, colour: red}
links:
  - endpoints: ["client:eth0", "router:eth2"]
    ipv4: ["10.0.0.1/24", "10.0.1.2/24"]
`), 0o644)
	_, err := run(t, "validate", "-t", bad)
	if err == nil {
		t.Fatal("validate accepted a broken file")
	}
	// Strict decoding errors come first and alone; the unknown field stops
	// the semantic pass, so this file reports exactly that one.
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	pos := regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `:\d+:\d+: \S+: `)
	for _, l := range lines {
		if !pos.MatchString(l) {
			t.Errorf("error line %q lacks file:line:col: field", l)
		}
	}
	if !strings.Contains(err.Error(), "colour") {
		t.Errorf("unknown field not named: %v", err)
	}

	os.WriteFile(bad, []byte(`name: Bad_Name
nodes:
  client: {kind: client}
  router: {kind: router}
links:
  - endpoints: ["client:eth0", "router:eth2"]
    ipv4: ["10.0.0.1/24", "10.0.1.2/24"]
  - endpoints: ["client:eth0", "ghost:eth0"]
`), 0o644)
	_, err = run(t, "validate", "-t", bad)
	if err == nil {
		t.Fatal("validate accepted a broken file")
	}
	lines = strings.Split(strings.TrimSpace(err.Error()), "\n")
	if len(lines) < 3 {
		t.Errorf("want every error at once (name, subnet mismatch, reused interface, unknown node), got:\n%v", err)
	}
	for _, l := range lines {
		if !pos.MatchString(l) {
			t.Errorf("error line %q lacks file:line:col: field", l)
		}
	}
}

func TestVersionNamesTheBuild(t *testing.T) {
	out, err := run(t, "version")
	if err != nil || !regexp.MustCompile(`^dsrlab \S+ commit \S+.* go1\.\d+`).MatchString(out) {
		t.Errorf("version = %q, %v", out, err)
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out, err := run(t, "completion", shell)
		if err != nil || !strings.Contains(out, "dsrlab") || len(out) < 500 {
			t.Errorf("completion %s: %v, %d bytes", shell, err, len(out))
		}
	}
}

func TestRootIsExplained(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: the refusal cannot be observed")
	}
	_, err := run(t, "up")
	if err == nil || !strings.Contains(err.Error(), "must run as root") || !strings.Contains(err.Error(), "network namespaces") {
		t.Errorf("up as non-root: %v", err)
	}
}

func TestBadFlagValues(t *testing.T) {
	for _, args := range [][]string{
		{"graph", "--format", "png"},
		{"--log-format", "xml", "validate"},
		{"down", "-t", "x.yaml", "--name", "y"},
	} {
		if _, err := run(t, args...); err == nil {
			t.Errorf("dsrlab %s succeeded", strings.Join(args, " "))
		}
	}
}

func TestEngineDownSaysHowToStartIt(t *testing.T) {
	// A lab that is recorded: down asks the engine about it.
	state := t.TempDir()
	t.Setenv("DSRLAB_STATE_DIR", state)
	if err := os.Mkdir(filepath.Join(state, "any"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-engine.sock"))
	_, err := run(t, "down", "--name", "any")
	if err == nil || !strings.Contains(err.Error(), "Docker engine is not reachable") || !strings.Contains(err.Error(), "dockerd") {
		t.Errorf("down without an engine: %v", err)
	}
}

// example lists the examples and writes one where asked, once.
func TestExample(t *testing.T) {
	t.Setenv("DSRLAB_CACHE_DIR", t.TempDir())
	out, err := run(t, "example")
	if err != nil || !strings.Contains(out, "xdp-lb-minimal  the simplest IPIP balancer") || !strings.Contains(out, "xdp-lb-hash") {
		t.Fatalf("example: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "mylb")
	out, err = run(t, "example", "xdp-lb-minimal", dir)
	if err != nil || !strings.Contains(out, "sudo dsrlab up -t "+filepath.Join(dir, "lab.yaml")) ||
		!strings.Contains(out, "next: sudo dsrlab test "+filepath.Join(dir, "cases.yaml")) {
		t.Fatalf("example xdp-lb-minimal: %v\n%s", err, out)
	}
	if out, err := run(t, "validate", "-t", filepath.Join(dir, "lab.yaml")); err != nil {
		t.Errorf("the example's lab does not validate: %v\n%s", err, out)
	}
	if _, err := run(t, "example", "xdp-lb-minimal", dir); err == nil || !strings.Contains(err.Error(), "overwrites nothing") {
		t.Errorf("writing it again: %v", err)
	}
	if _, err := run(t, "example", "nope"); err == nil || !strings.Contains(err.Error(), "xdp-lb-hash, xdp-lb-minimal") {
		t.Errorf("an unknown example: %v", err)
	}
}
