package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/examples"
)

// newExampleCmd writes out an example balancer: the starting point for a
// user's own program needs no checkout of dsrlab's repository.
func newExampleCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "example [NAME [DIR]]",
		Short: "Write an example XDP balancer and its lab into a directory, to start your own from",
		Long: "Without arguments, lists the examples. With NAME, writes that example's C source,\n" +
			"lab.yaml, cases.yaml and README into DIR (default ./NAME), overwriting nothing;\n" +
			"then `dsrlab test DIR/cases.yaml` runs its packet tests (no containers) and\n" +
			"`dsrlab up -t DIR/lab.yaml` compiles and runs it in the lab.",
		Args:      cobra.MaximumNArgs(2),
		ValidArgs: examples.Names(),
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			if len(args) == 0 {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				for _, name := range examples.Names() {
					fmt.Fprintf(tw, "%s\t%s\n", name, examples.Summary(name))
				}
				return tw.Flush()
			}
			name, dir := args[0], args[0]
			if len(args) == 2 {
				dir = args[1]
			}
			if err := examples.Write(name, dir); err != nil {
				return err
			}
			files, _ := examples.Files(name)
			fmt.Fprintf(w, "wrote %s into %s\nnext: sudo dsrlab test %s   (packet tests, no containers)\n      sudo dsrlab up -t %s\n",
				strings.Join(files, ", "), dir, filepath.Join(dir, "cases.yaml"), filepath.Join(dir, "lab.yaml"))
			return nil
		},
	}
}
