package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/ui"
)

const (
	uiHost      = "e2ui"
	uiHostIndex = 6
)

// uiState polls the page's state until ok accepts one, for a minute.
func uiState(t *testing.T, base, what string, ok func(*ui.Snapshot) bool) *ui.Snapshot {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last ui.Snapshot
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/api/state")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&last)
		resp.Body.Close()
		if err == nil && ok(&last) {
			return &last
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("no reading where %s; the last: %+v", what, last)
	return nil
}

// uiPost sends an action as the page does: the token in its header.
func uiPost(t *testing.T, base, token, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
	req.Header.Set(ui.TokenHeader, token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// TestUISeveralHosts: `dsrlab ui` of the reference lab with its real on a
// second host reads the real's counters there through the agent, and its
// trace and capture reach it too.
func TestUISeveralHosts(t *testing.T) {
	requireSetup(t)
	startHost(t, uiHost, uiHostIndex)
	traceLab(t, []byte(referenceText()), "mhu", "mhu-", "defaults:", hostsBlockWith(uiHost, uiHostIndex)+"defaults:",
		"real:   {kind: real}", "real:   {kind: real, host: "+uiHost+"}")
	page := startUI(t, "--name", "mhu")
	u, err := url.Parse(page)
	if err != nil {
		t.Fatal(err)
	}
	base, token := "http://"+u.Host, u.Query().Get("token")

	first := uiState(t, base, "every node runs", func(s *ui.Snapshot) bool { return s.Up && s.Status == "up" })
	realOut := func(s *ui.Snapshot) ui.Rate {
		for _, l := range s.Links {
			if l.A == "router:eth1" && l.B == "real:eth0" {
				return l.BtoA
			}
		}
		return ui.Rate{}
	}
	const size = 1 << 20
	dockerExec(t, "", "mhu-client", "sh", "-c", "head -c "+strconv.Itoa(size)+" /dev/zero | nc "+vip+" "+vipPort+" | wc -c")
	uiState(t, base, "the real's answer is counted on its own host", func(s *ui.Snapshot) bool {
		return realOut(s).Bytes >= realOut(first).Bytes+size
	})

	code, out := uiPost(t, base, token, "/api/trace", `{}`)
	var tr struct {
		Verdict struct {
			Pass    bool   `json:"pass"`
			Summary string `json:"summary"`
		} `json:"verdict"`
	}
	if err := json.Unmarshal(out, &tr); code != 200 || err != nil || !tr.Verdict.Pass {
		t.Errorf("trace across hosts: %d %v %s", code, err, out)
	}

	// The real's packets, captured on its host by the agent, while the
	// client talks to the VIP.
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(250 * time.Millisecond):
			}
			nc := exec.Command("docker", "exec", "-i", "mhu-client", "nc", vip, vipPort)
			nc.Stdin = strings.NewReader("hello\n")
			nc.Run()
		}
	}()
	code, pcap := uiPost(t, base, token, "/api/capture", `{"node":"real","iface":"eth0","count":2,"seconds":30}`)
	if code != 200 || len(pcap) < 24 || !bytes.Equal(pcap[:4], []byte{0xd4, 0xc3, 0xb2, 0xa1}) {
		t.Errorf("capture on the other host: %d, %d bytes", code, len(pcap))
	}
	close(stop)
	<-done
}
