package load

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dsrlab/dsrlab/internal/echo"
)

func TestRunCountsEveryConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := &echo.Server{Node: "real1", Addr: netip.MustParseAddr("10.0.0.1")}
	go srv.Serve(ctx, []echo.Listener{{Proto: "tcp", Addr: addr}})
	waitListening(t, addr.String())

	res := Run(context.Background(), Config{
		Target: addr.String(), Short: 200, Concurrency: 8, Long: 2,
		Interval: 10 * time.Millisecond, Timeout: 2 * time.Second,
	})
	if res.Failed() || res.Short != 200 || res.PerReal["real1"] != 200 || res.Long != 2 || res.LongLines < 2 {
		t.Fatalf("result %s, errors %v", res.Summary(), res.Errors)
	}
	for _, r := range res.LongReals {
		if r != "real1" {
			t.Errorf("long connection stayed on %q", r)
		}
	}
}

func TestRunReportsFailures(t *testing.T) {
	// Nothing listens here: every connection must be counted as failed.
	res := Run(context.Background(), Config{Target: "127.0.0.1:1", Short: 5, Concurrency: 2, Timeout: time.Second})
	if !res.Failed() || res.ShortFailed != 5 || len(res.Errors) == 0 {
		t.Fatalf("result %s", res.Summary())
	}
}

// waitListening returns once addr accepts connections: the server binds in
// its own goroutine.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if i == 500 {
			t.Fatalf("echo service never listened on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestExchangeChecksTheAnswer feeds exchange answers as the service could
// write them, and ones it must refuse.
func TestExchangeChecksTheAnswer(t *testing.T) {
	const h = "[real2 10.111.222.12] ('10.111.220.11', 40612): "
	for _, tc := range []struct {
		name     string
		answer   []string // the service's writes
		wantReal string
		wantErr  string
	}{
		{name: "one read", answer: []string{h + "short\n"}, wantReal: "real2"},
		{name: "line read in two pieces", answer: []string{h + "sho", h + "rt\n"}, wantReal: "real2"},
		{name: "no header", answer: []string{"short\n"}, wantErr: "no header"},
		{name: "payload changed", answer: []string{h + "shirt\n"}, wantErr: `real2 echoed "shirt\n"`},
		{name: "closed before the newline", answer: []string{h + "sho"}, wantErr: "answer: EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			go func() {
				defer server.Close()
				bufio.NewReader(server).ReadString('\n')
				for _, w := range tc.answer {
					io.WriteString(server, w)
				}
			}()
			real, err := exchange(client, bufio.NewReader(client), "short\n", 5*time.Second)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("exchange error = %v, want one about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || real != tc.wantReal {
				t.Errorf("exchange = %q, %v, want %q", real, err, tc.wantReal)
			}
		})
	}
}

// TestLongConnectionsHeldAndStallsMeasured: with Duration, long connections
// stay up for it although there are no short ones, and an answer held back
// (a path that failed over) shows as a stall of at least the hold-up.
func TestLongConnectionsHeldAndStallsMeasured(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	srv := &echo.Server{Node: "real1", Addr: netip.MustParseAddr("10.0.0.1")}
	go srv.Serve(ctx, []echo.Listener{{Proto: "tcp", Addr: addr}})
	waitListening(t, addr.String())

	// A proxy in front of the service holds every answer back once, for
	// holdUp, 300 ms into the run.
	const holdUp = 1200 * time.Millisecond
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer front.Close()
	start := time.Now()
	go func() {
		for {
			c, err := front.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", addr.String())
				if err != nil {
					return
				}
				defer s.Close()
				go io.Copy(s, c)
				held := false
				buf := make([]byte, 4096)
				for {
					n, err := s.Read(buf)
					if err != nil {
						return
					}
					if !held && time.Since(start) > 300*time.Millisecond {
						held = true
						time.Sleep(holdUp)
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()

	res := Run(ctx, Config{
		Target: front.Addr().String(), Long: 3, Interval: 20 * time.Millisecond,
		Timeout: 5 * time.Second, Duration: 2 * time.Second,
	})
	if res.Failed() || res.Long != 3 {
		t.Fatalf("result %s, errors %v", res.Summary(), res.Errors)
	}
	if res.Elapsed < 2*time.Second {
		t.Errorf("long connections ended after %v, want them held for the 2 s duration", res.Elapsed)
	}
	if res.LongMaxStall < holdUp || res.LongStalled != 3 {
		t.Errorf("longest wait %v and %d stalled, want at least %v on all 3", res.LongMaxStall, res.LongStalled, holdUp)
	}
}
