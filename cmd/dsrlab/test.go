//go:build linux

package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/capture"
	"github.com/dsrlab/dsrlab/internal/capture/filter"
	"github.com/dsrlab/dsrlab/internal/fileio"
	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/pkttest"
	"github.com/dsrlab/dsrlab/topology"
)

func newTestCmd(out *output) *cobra.Command {
	var topoFile, node, program, format, fromCapture, writeCases, only string
	cmd := &cobra.Command{
		Use:   "test [-t TOPOLOGY] [--node NODE] [--program PROGRAM] [--run REGEXP] CASES.yaml... | --from-capture FILE [--write-cases OUT]",
		Short: "Run packet tests of a node's XDP or TC program (BPF_PROG_TEST_RUN; no containers)",
		Long: "test loads a node's XDP or TC program the way `up` would — your own (compiled, its\n" +
			"maps and globals filled from the topology) or dsrlab's balancer with the lab's VIPs\n" +
			"(and its health-check encapsulation) — and runs each case of the case files\n" +
			"through it with BPF_PROG_TEST_RUN: no container, no Docker. Each case gets a fresh\n" +
			"copy of the program. A case passes when the verdict, the fields of the output\n" +
			"packet and the map entries it names are as expected; a failing one shows the\n" +
			"packets layer by layer and the differing bytes.\n" +
			"The lab is -t, else the case file's topology: (relative to it), else the reference\n" +
			"lab; the node --node, else the case file's node:, else the lab's only node with a\n" +
			"program; the program --program, else the case file's program:, else the node's\n" +
			"XDP program, else its only one. A program is named by its hook (xdp,\n" +
			"IFACE:ingress, IFACE:egress:PRIORITY, tc), its name in its object or its file.\n" +
			"--from-capture runs the frames of a pcap or pcapng file (`dsrlab capture -w`) and\n" +
			"prints what the program did with each; --write-cases writes that as a case file.\n" +
			"Exits 0 only when every case passes. See docs/TESTING-PROGRAMS.md.",
		Example: "  dsrlab test examples/xdp-lb-minimal/cases.yaml\n" +
			"  dsrlab test --run 'IPv6|ping' labs/cases/balancer.yaml\n" +
			"  dsrlab test --format junit cases.yaml > report.xml\n" +
			"  dsrlab test -t labs/dsr.yaml --node katran --from-capture lb.pcap --write-cases lb-cases.yaml",
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "table", "json", "junit":
			default:
				return fmt.Errorf("--format %q: want table, json or junit", format)
			}
			if fromCapture != "" {
				if len(args) > 0 {
					return fmt.Errorf("--from-capture runs a capture, not case files (%s)", strings.Join(args, " "))
				}
				return replayCapture(cmd.Context(), cmd.OutOrStdout(), topoFile, node, program, fromCapture, writeCases)
			}
			if writeCases != "" {
				return fmt.Errorf("--write-cases goes with --from-capture")
			}
			if len(args) == 0 {
				return fmt.Errorf("name a case file (dsrlab test cases.yaml), or --from-capture FILE")
			}
			var filter *regexp.Regexp
			if only != "" {
				var err error
				if filter, err = regexp.Compile(only); err != nil {
					return fmt.Errorf("--run: %w", err)
				}
			}
			var results []*pkttest.Result
			for _, file := range args {
				rs, err := runCaseFile(cmd.Context(), file, topoFile, node, program, filter)
				if err != nil {
					return err
				}
				results = append(results, rs...)
			}
			w := cmd.OutOrStdout()
			var err error
			switch format {
			case "json":
				err = pkttest.WriteJSON(w, results)
			case "junit":
				err = pkttest.WriteJUnit(w, results)
			default:
				err = pkttest.WriteTable(w, results, pkttest.RenderOptions{Verbose: out.verbose, Durations: true})
			}
			if err != nil {
				return err
			}
			for _, r := range results {
				if !r.Passed() {
					return exitError{code: 1}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&topoFile, "topology", "t", "", "the lab (default: the case file's topology:, else the reference lab)")
	f.StringVar(&node, "node", "", "the node whose program runs (default: the case file's node:, else the lab's only one)")
	f.StringVar(&program, "program", "", "which of the node's programs runs: xdp, IFACE:DIRECTION[:PRIORITY], tc, its name or file (default: the case file's program:, else the XDP one)")
	f.StringVar(&format, "format", "table", "table, json or junit")
	f.StringVar(&only, "run", "", "run only the cases whose name matches this regular expression")
	f.StringVar(&fromCapture, "from-capture", "", "run the frames of this pcap/pcapng file and print what the program did")
	f.StringVar(&writeCases, "write-cases", "", "with --from-capture: write the results as a case file to edit")
	return cmd
}

// runCaseFile parses a case file against its lab and runs its cases.
func runCaseFile(ctx context.Context, file, topoFile, node, program string, only *regexp.Regexp) ([]*pkttest.Result, error) {
	data, err := fileio.ReadRegular(file, fileio.MaxText)
	if err != nil {
		return nil, err
	}
	h, err := pkttest.ReadHeader(data, file)
	if err != nil {
		return nil, err
	}
	if topoFile == "" && h.Topology != "" {
		topoFile = h.Topology
		if !filepath.IsAbs(topoFile) {
			topoFile = filepath.Join(filepath.Dir(file), topoFile)
		}
	}
	t, err := loadTopology(topoFile)
	if err != nil {
		return nil, err
	}
	if node == "" {
		node = h.Node
	}
	if node, err = programNode(t, node); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	choice, err := chooseProgram(ctx, t, node, program, file, h)
	if err != nil {
		return nil, err
	}
	suite, err := pkttest.Parse(data, file, lab.Resolver(t), pkttest.Target{Hook: pkttest.HookOf(choice.Type), Name: cmp.Or(choice.Name, choice.File)})
	if err != nil {
		return nil, err
	}
	if only != nil {
		suite.Cases = slices.DeleteFunc(suite.Cases, func(c *pkttest.Case) bool { return !only.MatchString(c.Name) })
	}
	if err := pkttest.CanRun(); err != nil {
		return nil, err
	}
	p, err := lab.OpenNodeProgram(ctx, t, choice)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	r := &pkttest.Runner{Program: p, Resolver: lab.Resolver(t)}
	return r.Run(suite), nil
}

// programNode is the node given, or the lab's only node with a program.
func programNode(t *topology.Topology, node string) (string, error) {
	if node != "" {
		return node, nil
	}
	nodes := lab.ProgramNodes(t)
	switch len(nodes) {
	case 1:
		return nodes[0], nil
	case 0:
		return "", fmt.Errorf("lab %s runs no program (no node with program: or programs:, no katran with VIPs)", t.Name)
	}
	return "", fmt.Errorf("lab %s has several nodes with a program (%s): name one with node: in the case file or --node", t.Name, strings.Join(nodes, ", "))
}

// chooseProgram picks the program of node the cases of file run: the
// one --program names, else the case file's program:, else the node's
// default. A choice that names no single program is reported where it
// was made.
func chooseProgram(ctx context.Context, t *topology.Topology, node, flag, file string, h pkttest.Header) (lab.ProgramChoice, error) {
	which := cmp.Or(flag, h.Program)
	c, err := lab.ChooseProgram(ctx, t, node, which)
	var ce *lab.ChoiceError
	if !errors.As(err, &ce) {
		return c, err
	}
	switch {
	case flag != "":
		return c, fmt.Errorf("--program %s: %s", flag, ce.Msg)
	case which != "":
		return c, &topology.Error{File: file, Line: h.ProgramAt[0], Column: h.ProgramAt[1], Field: "program", Msg: ce.Msg}
	}
	msg := ce.Msg + " (with program: in the case file, or --program)"
	if h.NodeAt[0] == 0 {
		return c, errors.New(msg) // the node came from --node, not the file
	}
	return c, &topology.Error{File: file, Line: h.NodeAt[0], Column: h.NodeAt[1], Msg: msg}
}

// replayCapture runs each Ethernet frame of a capture through a fresh
// copy of the program, as a case written from it will run, prints what
// the program did, and writes the case file if asked.
func replayCapture(ctx context.Context, w io.Writer, topoFile, node, program, file, writeCases string) error {
	data, err := fileio.ReadRegular(file, fileio.MaxObject)
	if err != nil {
		return err
	}
	c, err := capture.ReadFile(data)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	t, err := loadTopology(topoFile)
	if err != nil {
		return err
	}
	if node, err = programNode(t, node); err != nil {
		return err
	}
	choice, err := lab.ChooseProgram(ctx, t, node, program)
	var ce *lab.ChoiceError
	if errors.As(err, &ce) {
		return fmt.Errorf("--program: %w", err)
	}
	if err != nil {
		return err
	}
	if err := pkttest.CanRun(); err != nil {
		return err
	}
	p, err := lab.OpenNodeProgram(ctx, t, choice)
	if err != nil {
		return err
	}
	defer p.Close()
	var obs []pkttest.Observed
	for i, pkt := range c.Packets {
		where := ""
		if name := c.Interfaces[pkt.Iface].Name; name != "" {
			where = " (" + name + ")"
		}
		if c.Interfaces[pkt.Iface].LinkType != filter.Ethernet {
			fmt.Fprintf(w, "%d%s: skipped: not an Ethernet frame\n", i+1, where)
			continue
		}
		o, err := observe(p, pkt.Data)
		if err != nil {
			return fmt.Errorf("frame %d: %w", i+1, err)
		}
		o.Frame = i + 1
		obs = append(obs, o)
		fmt.Fprintf(w, "%d%s: %s\n    %s", o.Frame, where, pkttest.Summary(o.In), o.Verdict)
		if o.Verdict.GoesOn() {
			fmt.Fprintf(w, " %s", pkttest.Summary(o.Out))
		}
		fmt.Fprintln(w)
	}
	if writeCases == "" {
		return nil
	}
	h := pkttest.CaseFileHeader{Capture: relativeTo(writeCases, file), Node: node, Program: program}
	if topoFile != "" {
		h.Topology = relativeTo(writeCases, topoFile)
	}
	f, err := os.OpenFile(writeCases, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("--write-cases: %w (dsrlab overwrites nothing)", err)
	}
	err = pkttest.WriteCaseFile(f, h, obs)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(writeCases)
		return err
	}
	fmt.Fprintf(w, "wrote %d cases to %s\n", len(obs), writeCases)
	return nil
}

func observe(p *lab.NodeProgram, frame []byte) (pkttest.Observed, error) {
	l, err := p.Load()
	if err != nil {
		return pkttest.Observed{}, err
	}
	defer l.Close()
	out, err := pkttest.Once(l.Program, pkttest.HookOf(p.Type), frame, nil)
	return pkttest.Observed{In: frame, Out: out.Packet, Verdict: out.Verdict}, err
}

// relativeTo names path as a file in caseFile's directory would.
func relativeTo(caseFile, path string) string {
	abs, err := filepath.Abs(path)
	dir, err2 := filepath.Abs(filepath.Dir(caseFile))
	if err != nil || err2 != nil {
		return path
	}
	if rel, err := filepath.Rel(dir, abs); err == nil {
		return rel
	}
	return abs
}
