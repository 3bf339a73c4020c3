//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

// labCommands are the commands that build, run and look into labs: they
// need Linux (network namespaces, XDP, the container engine).
func labCommands(out *output) []*cobra.Command {
	return []*cobra.Command{
		newUpCmd(out), newDownCmd(out), newInspectCmd(), newVerifyCmd(), newExecCmd(), newRealCmd(out),
		newStatsCmd(), newImageCmd(), newEchoCmd(), newLoadCmd(), newMapCmd(), newCaptureCmd(out), newAgentCmd(), newTraceCmd(out),
		newFailCmd(), newRecoverCmd(out), newRoutesCmd(), newUICmd(),
		newBGPCmd(),
		newTestCmd(out),
		newControllerCmd(), newEventsCmd(),
	}
}

func (o *output) reporter(cmd *cobra.Command) lab.Reporter {
	switch {
	case o.format == "json":
		return newJSONReporter(cmd.ErrOrStderr(), o.verbose)
	case o.quiet:
		return quietReporter{}
	}
	return newTextReporter(cmd.OutOrStdout(), o.verbose)
}

// labSelector is the -t FILE / --name LAB pair of commands that act on a
// running lab.
type labSelector struct {
	file, name string
}

func (s *labSelector) flags(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&s.file, "topology", "t", "", "topology file of the lab")
	cmd.Flags().StringVar(&s.name, "name", "", "name of the lab")
}

// labName picks the lab: --name, else the name in -t FILE, else the only
// lab that is up.
func (s *labSelector) labName(ctx context.Context, rt runtime.Runtime) (string, error) {
	switch {
	case s.file != "" && s.name != "":
		return "", errors.New("give either -t FILE or --name LAB, not both")
	case s.name != "":
		return s.name, topology.ValidLabName(s.name)
	case s.file != "":
		return nameInFile(s.file)
	}
	names, err := lab.Labs(ctx, rt)
	if err != nil {
		return "", err
	}
	switch len(names) {
	case 0:
		return "", errors.New("no lab is up")
	case 1:
		return names[0], nil
	}
	return "", fmt.Errorf("several labs are up (%s): choose one with --name", strings.Join(names, ", "))
}

// topology returns the selected lab's topology: the file if given, else the
// one recorded when the lab was brought up.
func (s *labSelector) topology(ctx context.Context, rt runtime.Runtime) (*topology.Topology, error) {
	if s.file != "" && s.name == "" {
		return topology.Load(s.file)
	}
	name, err := s.labName(ctx, rt)
	if err != nil {
		return nil, err
	}
	topo, err := lab.LoadState(name)
	if errors.Is(err, fs.ErrNotExist) {
		// Said as inspect says it: the state directory is dsrlab's business.
		return nil, fmt.Errorf("lab %q is not up", name)
	}
	return topo, err
}

// withTopology connects to the engines of the selected lab's hosts and
// loads its topology, for commands that act on a running lab.
func (s *labSelector) withTopology(ctx context.Context, fn func(runtime.Set, *topology.Topology) error) error {
	rt, closeRT, err := openRuntime()
	if err != nil {
		return err
	}
	if s.file == "" && s.name == "" {
		// The lab is found by asking the engine which labs are up.
		if err := rt.Ping(ctx); err != nil {
			closeRT()
			return err
		}
	}
	topo, err := s.topology(ctx, rt)
	closeRT()
	if err != nil {
		return err
	}
	rts, closeAll, err := openEngines(hostRecords(topo))
	if err != nil {
		return err
	}
	defer closeAll()
	if err := lab.Reachable(ctx, rts, lab.HostsInUse(topo)); err != nil {
		return err
	}
	return fn(rts, topo)
}
