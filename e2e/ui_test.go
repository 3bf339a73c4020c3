package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dsrlab/dsrlab/labs"
)

// downloadPort is a VIP port of the UI test's lab whose real serves a
// download with busybox nc: a bulk transfer whose bytes flow from the
// real, the way DSR is meant for (small requests, big answers).
const downloadPort = "50008"

// requireBrowser returns the Chromium to drive, or skips (fails under
// DSRLAB_REQUIRE_E2E=1) without one.
func requireBrowser(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err == nil {
		return path
	}
	if os.Getenv("DSRLAB_REQUIRE_E2E") == "1" {
		t.Fatal("browser test required but chromium is not installed (scripts/install-deps.sh --test installs it)")
	}
	t.Skip("browser test skipped: chromium is not installed (apt-get install chromium)")
	return ""
}

// artifactDir is where the browser test's screenshots go: $DSRLAB_ARTIFACTS
// when set (CI keeps it), else the test's temporary directory.
func artifactDir(t *testing.T) string {
	if dir := os.Getenv("DSRLAB_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// startUI runs `dsrlab ui` on a free loopback port and returns the URL it
// printed; the process ends with the test.
func startUI(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(dsrlabBin, append([]string{"ui", "--listen", "127.0.0.1:0"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dsrlab ui printed no URL: %v", err)
	}
	go io.Copy(io.Discard, out)
	i := strings.Index(line, "http://127.0.0.1:")
	if i < 0 {
		t.Fatalf("dsrlab ui printed %q, want a loopback URL", line)
	}
	return strings.Fields(line[i:])[0]
}

// browser starts a headless Chromium with a profile of its own, which
// only ever loads the loopback page it is given.
func browser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1500, 1000),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The browser starts with the first run, on the context it is given:
	// this one, not the deadlines of the steps after it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// within runs browser steps with a deadline: a page that never gets there
// fails instead of hanging.
func within(t *testing.T, ctx context.Context, d time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func evaluate[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// startDownload has the real serve an endless stream on downloadPort and
// the client read it through the VIP, until the returned stop is called.
func startDownload(t *testing.T) (stop func()) {
	t.Helper()
	if out, err := exec.Command("docker", "exec", "-d", "real", "sh", "-c", "nc -l -p "+downloadPort+" < /dev/zero").CombinedOutput(); err != nil {
		t.Fatalf("start the download server: %v\n%s", err, out)
	}
	// The client keeps its input open for as long as it downloads:
	// busybox nc on either end stops when the other's input ends. It
	// passes one byte on, to say it is connected, and drops the rest
	// itself: the download is not slowed down by docker exec's stream.
	for range 50 {
		hold, in := io.Pipe()
		cmd := exec.Command("docker", "exec", "-i", "client", "sh", "-c", "nc "+vip+" "+downloadPort+" | (head -c 1; cat > /dev/null)")
		cmd.Stdin = hold
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(out, make([]byte, 1)); err != nil {
			// Not listening yet.
			in.Close()
			cmd.Wait()
			time.Sleep(200 * time.Millisecond)
			continue
		}
		go io.Copy(io.Discard, out)
		return func() {
			in.Close()
			cmd.Wait()
		}
	}
	t.Fatal("the client never reached the download server through the VIP")
	return nil
}

// rates reads the page's rate labels: bits per second by direction.
func rates(t *testing.T, ctx context.Context) map[string]float64 {
	return evaluate[map[string]float64](t, ctx,
		`Object.fromEntries([...document.querySelectorAll("#graph .rate")].map(e => [e.dataset.dir, +e.dataset.bps]))`)
}

// TestUIInABrowser opens `dsrlab ui` of the reference lab (with one VIP
// port more, for a download) in headless Chromium: every node and link
// drawn, a trace's verdict and hops rendered, the link counters moving
// during a download through the VIP with the asymmetry of DSR in sight
// (the real's return direction carries the bytes, katran's link next to
// nothing), `dsrlab down` noticed, and `up` again followed.
func TestUIInABrowser(t *testing.T) {
	requireSetup(t)
	chromium := requireBrowser(t)
	download := "    reals: [real]\n  - address: " + vip + "\n    port: " + downloadPort + "\n    proto: tcp\n    lb: katran\n    reals: [real]\n    service: none\n"
	path := traceLab(t, labs.Reference, "dsr", "", "    reals: [real]\n", download)
	url := startUI(t, "--name", "dsr")
	shots := artifactDir(t)
	ctx := browser(t, chromium)

	within(t, ctx, time.Minute, "the page shows the lab up",
		chromedp.Navigate(url), chromedp.WaitVisible(`body[data-up="true"]`))
	nodes := evaluate[[]string](t, ctx, `[...document.querySelectorAll("#graph .node-box")].map(e => e.dataset.node).sort()`)
	if strings.Join(nodes, " ") != "client katran real router" {
		t.Errorf("nodes drawn: %v", nodes)
	}
	links := evaluate[[]string](t, ctx, `[...document.querySelectorAll("#graph .link")].map(e => e.dataset.link + " " + e.querySelectorAll(".dir").length).sort()`)
	if want := "client:eth0—router:eth2 2,router:eth0—katran:eth0 2,router:eth1—real:eth0 2"; strings.Join(links, ",") != want {
		t.Errorf("links drawn: %q, want %q (each with both directions)", links, want)
	}
	if url := evaluate[string](t, ctx, `location.href`); strings.Contains(url, "token") {
		t.Errorf("the token stayed in the address bar: %s", url)
	}

	within(t, ctx, 2*time.Minute, "a trace from the page",
		chromedp.Click("#trace-run"), chromedp.WaitVisible(`#trace-verdict.pass, #trace-verdict.fail`))
	verdict := evaluate[string](t, ctx, `document.getElementById("trace-verdict").textContent`)
	hops := evaluate[int](t, ctx, `document.querySelectorAll("#sequence .seq-hop").length`)
	marks := evaluate[int](t, ctx, `document.querySelectorAll("#hops .hop-mark").length`)
	if !strings.HasPrefix(verdict, "PASS: ") || !strings.Contains(verdict, "direct return") || hops < 6 || marks != 6 {
		t.Errorf("trace: %q, %d hops in the sequence, %d directions marked on the graph (want PASS, 6 or more, 6)", verdict, hops, marks)
	}

	// The download: the real's return direction rises, katran's link
	// carries only the client's acknowledgements.
	stop := startDownload(t)
	const (
		realDir       = "real:eth0>router:eth1"
		katranOut     = "katran:eth0>router:eth0"
		katranIn      = "router:eth0>katran:eth0"
		enough        = 20e6 // bit/s: a download under way
		nearZeroShare = 10   // katran's link carries under a tenth of the real's
	)
	asymmetric := func() (map[string]float64, bool) {
		deadline := time.Now().Add(time.Minute)
		for {
			seen := rates(t, ctx)
			r := seen[realDir]
			if r > enough && seen[katranOut]*nearZeroShare < r && seen[katranIn]*nearZeroShare < r {
				return seen, true
			}
			if time.Now().After(deadline) {
				return seen, false
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	totalBytes := func() float64 {
		return evaluate[float64](t, ctx, `+document.querySelector('#graph .rate[data-dir="`+realDir+`"]').dataset.bytes`)
	}
	// Twice, a few readings apart: the counters keep moving, and the
	// picture stays the same.
	var before float64
	for i := range 2 {
		seen, ok := asymmetric()
		if !ok {
			t.Fatalf("no reading with the real sending over %.0f bit/s and katran's link under a %dth of it: %v", enough, nearZeroShare, seen)
		}
		t.Logf("during the download: %v", seen)
		if now := totalBytes(); i == 1 && now <= before {
			t.Errorf("the real's byte count did not rise: %.0f then %.0f", before, now)
		} else {
			before = now
		}
		if i == 0 {
			time.Sleep(3 * time.Second)
		}
	}
	screenshot(t, ctx, shots, "ui-download.png")
	stop()

	if _, err := dsrlab(t, "down", "--name", "dsr"); err != nil {
		t.Fatal(err)
	}
	within(t, ctx, time.Minute, "the page notices the lab went down",
		chromedp.WaitVisible(`body[data-up="false"]`), chromedp.WaitVisible(`#down-banner`))
	banner := evaluate[string](t, ctx, `document.getElementById("down-banner").textContent + " / " + document.getElementById("status").textContent`)
	if !strings.Contains(banner, "down") {
		t.Errorf("down: the page says %q", banner)
	}
	screenshot(t, ctx, shots, "ui-down.png")

	// Up again, re-wired from scratch: the page open all along follows.
	upLab(t, path, "dsr")
	within(t, ctx, time.Minute, "the page follows the lab up again",
		chromedp.WaitVisible(`body[data-up="true"]`), chromedp.WaitNotPresent(`#graph .link.down`))
	fmt.Fprintln(os.Stderr, "ui screenshots in", shots)
}
