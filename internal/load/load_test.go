package load

import (
	"context"
	"net"
	"net/netip"
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
	time.Sleep(100 * time.Millisecond)

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
