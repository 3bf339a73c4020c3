//go:build linux

package main

import (
	"fmt"
	"maps"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/topology"
)

func newDownCmd(out *output) *cobra.Command {
	var sel labSelector
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove everything a lab created (the reference lab when neither -t nor --name is given)",
		Long: "down removes the lab's containers, found by their labels, and its recorded state. It works\n" +
			"when the topology file was edited or deleted, after a crash, and on a lab that is not up.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name := sel.name
			if name == "" {
				var err error
				if name, err = nameInFile(sel.file); err != nil {
					return err
				}
			} else if sel.file != "" {
				return fmt.Errorf("give either -t FILE or --name LAB, not both")
			}
			unlock, err := lab.Lock(name)
			if err != nil {
				return err
			}
			defer unlock()
			recorded, err := lab.Recorded(name)
			if err != nil {
				return err
			}
			if !recorded {
				// Nothing of the lab is on any engine: none need be up,
				// or asked.
				out.reporter(cmd).Note(fmt.Sprintf("Lab %q is not up: nothing to remove", name))
				return nil
			}
			// Every engine the lab may have containers on: as up recorded
			// them before it created any, and as the file names them.
			hosts, err := lab.LoadHosts(name)
			if err != nil {
				return err
			}
			if sel.file != "" {
				if topo, err := topology.Load(sel.file); err == nil {
					maps.Copy(hosts, hostRecords(topo))
				}
			}
			rts, closeRTs, err := openEngines(hosts)
			if err != nil {
				return err
			}
			defer closeRTs()
			removed, err := lab.Down(cmd.Context(), rts, name, out.reporter(cmd))
			if err != nil {
				return err
			}
			if len(removed) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "Lab %q is down: %d containers removed\n", name, len(removed))
			}
			return nil
		},
	}
	sel.flags(cmd)
	return cmd
}
