package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/dsrlab/dsrlab/internal/fileio"
	"github.com/dsrlab/dsrlab/labs"
	"github.com/dsrlab/dsrlab/topology"
)

// output holds the flags every command shares for what it prints.
type output struct {
	quiet, verbose bool
	format         string // log format: text or json
}

func newRootCmd() *cobra.Command {
	out := &output{}
	root := &cobra.Command{
		Use:   "dsrlab",
		Short: "Labs for an XDP Direct Server Return load balancer",
		Long: "dsrlab brings up containerlab-style labs of a client, a router, a Katran-style XDP\n" +
			"IPIP load balancer and its reals from a YAML topology, and proves that replies\n" +
			"return to the client directly, without crossing the balancer.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if out.format != "text" && out.format != "json" {
				return fmt.Errorf("--log-format %q: want text or json", out.format)
			}
			return nil
		},
	}
	root.PersistentFlags().BoolVarP(&out.quiet, "quiet", "q", false, "print only the result")
	root.PersistentFlags().BoolVarP(&out.verbose, "verbose", "v", false, "print every action inside each step")
	root.PersistentFlags().StringVar(&out.format, "log-format", "text", "progress format: text or json (one object per line, on stderr)")
	// validate, graph, example, version and completion work anywhere (a laptop
	// checking a topology); the commands that run labs need Linux.
	root.AddCommand(newValidateCmd(), newGraphCmd(), newVersionCmd(), newExampleCmd())
	root.AddCommand(labCommands(out)...)
	return root
}

// requireRoot explains up front why root is needed, rather than failing
// deep inside with EPERM from setns or bpf.
func requireRoot(why string) func(*cobra.Command, []string) error {
	return func(*cobra.Command, []string) error {
		if os.Geteuid() != 0 {
			return fmt.Errorf("must run as root: %s", why)
		}
		return nil
	}
}

const rootForNamespaces = "dsrlab enters container network namespaces and reads or loads XDP programs " +
	"(CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_BPF); run it with sudo"

// loadTopology reads -t FILE, or the embedded reference lab when no file
// is given.
func loadTopology(path string) (*topology.Topology, error) {
	if path == "" {
		return topology.Parse(labs.Reference, labs.ReferenceFile)
	}
	return topology.Load(path)
}

// nameInFile reads only the name from a topology file. Down must work when
// the file has since been edited into something invalid: the containers,
// found by their labels, are what counts.
func nameInFile(path string) (string, error) {
	data := labs.Reference
	if path != "" {
		var err error
		if data, err = fileio.ReadRegular(path, fileio.MaxText); err != nil {
			return "", err
		}
	}
	var head struct {
		Name string `yaml:"name"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil || head.Name == "" {
		return "", fmt.Errorf("%s: cannot read the lab name (%v); use --name LAB", path, err)
	}
	return head.Name, nil
}

// exitError carries a command's exit code to main without printing more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// outputFormat is the --format flag of commands that print a table or JSON.
type outputFormat string

func (f *outputFormat) register(cmd *cobra.Command) {
	cmd.Flags().StringVar((*string)(f), "format", "table", "table or json")
}

func (f outputFormat) check() error {
	if f != "table" && f != "json" {
		return fmt.Errorf("--format %q: want table or json", string(f))
	}
	return nil
}
