package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/runtime/docker"
	"github.com/dsrlab/dsrlab/labs"
)

func newDownCmd() *cobra.Command {
	var file, name string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove everything a lab created (the reference lab when neither -t nor --name is given)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file != "" && name != "" {
				return errors.New("give either -t FILE or --name LAB, not both")
			}
			if name == "" {
				var err error
				if name, err = labName(file); err != nil {
					return err
				}
			}
			rt, err := docker.New()
			if err != nil {
				return err
			}
			defer rt.Close()
			removed, err := lab.Down(cmd.Context(), rt, name, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if len(removed) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "Lab %q is down: %d containers removed\n", name, len(removed))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "topology", "t", "", "topology file whose lab to remove")
	cmd.Flags().StringVar(&name, "name", "", "name of the lab to remove")
	return cmd
}

// labName reads only the name from a topology file. Down must work when the
// file has since been edited into something invalid: the containers, found
// by their labels, are what counts.
func labName(path string) (string, error) {
	data := labs.Reference
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
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
