package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/echo"
)

// TestBulkOfShortLines is the user's own bulk check, `yes hello | head -c
// 8000000 | docker exec -i client nc VIP 50007`. busybox nc is single
// threaded: it blocks sending while the answer piles up unread, so an echo
// that answered each short line with a header (about nine bytes back for
// every one sent) stalled it for good at a few megabytes. busybox nc needs
// no -w here: at the end of its input it shuts down its sending side and
// exits when the service closes, after the last answer.
func TestBulkOfShortLines(t *testing.T) {
	requireSetup(t)
	const file = "../labs/dsr.yaml"
	t.Cleanup(func() { exec.Command(dsrlabBin, "down", "-t", file).Run() })
	if _, err := dsrlab(t, "up", "-t", file); err != nil {
		t.Fatal(err)
	}

	const size = 8000000
	payload := bytes.Repeat([]byte("hello\n"), size/len("hello\n"))
	// A stall never ends by itself: the deadline turns it into a failure.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nc := exec.CommandContext(ctx, "docker", "exec", "-i", "client", "nc", vip, vipPort)
	var reply, stderr bytes.Buffer
	nc.Stdin, nc.Stdout, nc.Stderr = bytes.NewReader(payload), &reply, &stderr
	if err := nc.Run(); err != nil {
		t.Fatalf("docker exec client nc: %v after %d bytes of answer (%d sent): %s", err, reply.Len(), len(payload), stderr.String())
	}

	a, err := echo.Parse(reply.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if a.Real != "real" || a.Client.Addr().String() != clientIP {
		t.Errorf("answered by %s seeing %s, want real seeing the client's own %s", a.Real, a.Client, clientIP)
	}
	if !bytes.Equal(a.Payload, payload) {
		at := 0
		for at < min(len(a.Payload), len(payload)) && a.Payload[at] == payload[at] {
			at++
		}
		t.Errorf("echoed %d bytes, want the %d sent, unchanged and in order: they differ from byte %d on", len(a.Payload), len(payload), at)
	}
	// One header per read of the service, each read about a segment or
	// more: a few percent over the payload, against about nine times the
	// payload with a header per line.
	headers := (reply.Len() - len(payload)) / len(a.Header.String())
	t.Logf("%d bytes of answer for %d sent: %d headers", reply.Len(), len(payload), headers)
	if limit := len(payload) + len(payload)/5; reply.Len() > limit {
		t.Errorf("answer is %d bytes for %d sent, want at most %d (a small header per read)", reply.Len(), len(payload), limit)
	}
}
