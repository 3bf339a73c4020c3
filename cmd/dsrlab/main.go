// Command dsrlab brings up and tears down XDP Direct Server Return load
// balancer labs described in a YAML topology.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// A closed output (`dsrlab up | head`) must not kill the process: by
	// default a write to a broken stdout or stderr ends a Go program by
	// SIGPIPE, leaving `up` half done and unrecorded. Once SIGPIPE is asked
	// for, such a write returns EPIPE instead, which progress writers ignore.
	// Notify rather than Ignore: an ignored signal stays ignored in the
	// programs dsrlab runs, and they should keep the usual behaviour.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	// Ctrl-C or SIGTERM cancels the context; `up` then rolls back what it
	// created instead of leaving a half-built lab.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal the default behaviour returns, so a second
	// Ctrl-C during a slow rollback still ends the process.
	go func() { <-ctx.Done(); stop() }()
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err == nil {
		return
	}
	var exit exitError
	if errors.As(err, &exit) {
		os.Exit(exit.code)
	}
	fmt.Fprintln(os.Stderr, "Error:", err)
	os.Exit(1)
}
