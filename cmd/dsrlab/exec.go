//go:build linux

package main

import (
	"fmt"
	"os"

	"github.com/moby/term"
	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

func newExecCmd() *cobra.Command {
	var sel labSelector
	var tty bool
	cmd := &cobra.Command{
		Use:   "exec NODE -- COMMAND [ARG...]",
		Short: "Run a command in a lab node's container, by node name",
		Long: "exec runs a command in the container of a node of a running lab, with this process's\n" +
			"standard input, output and error, and exits with the command's exit code.",
		Example: "  dsrlab exec client -- nc 192.168.10.1 50007\n  dsrlab exec --tty client -- sh",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return fmt.Errorf("usage: dsrlab exec NODE -- COMMAND [ARG...]")
			}
			var code int
			err := sel.withTopology(cmd.Context(), func(rts runtime.Set, topo *topology.Topology) error {
				n := topo.Node(args[0])
				if n == nil {
					return fmt.Errorf("lab %q has no node %q", topo.Name, args[0])
				}
				stdio := runtime.ExecIO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, TTY: tty}
				if tty {
					restore, err := rawTerminal(&stdio)
					if err != nil {
						return err
					}
					defer restore()
				}
				var err error
				code, err = rts[n.Host.Name].Exec(cmd.Context(), n.ContainerName, args[1:], stdio)
				return err
			})
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code: code}
			}
			return nil
		},
	}
	sel.flags(cmd)
	cmd.Flags().BoolVar(&tty, "tty", false, "give the command a terminal (for interactive shells), like docker exec -it")
	return cmd
}

// rawTerminal puts this process's terminal in raw mode, so keys reach the
// command unprocessed, and sizes the command's terminal like it.
func rawTerminal(stdio *runtime.ExecIO) (restore func(), err error) {
	fd, isTerm := term.GetFdInfo(os.Stdin)
	if !isTerm {
		return nil, fmt.Errorf("--tty needs a terminal on standard input")
	}
	if ws, err := term.GetWinsize(fd); err == nil {
		stdio.Rows, stdio.Cols = uint(ws.Height), uint(ws.Width)
	}
	state, err := term.SetRawTerminal(fd)
	if err != nil {
		return nil, err
	}
	return func() { term.RestoreTerminal(fd, state) }, nil
}
