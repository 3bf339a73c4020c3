//go:build linux

package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/lab"
)

// newAgentCmd is dsrlab's agent on another host of a lab: `up` runs it in
// a container of the node image there (host network and PID namespaces),
// with a request on standard input, and reads the result on standard
// output.
func newAgentCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "agent",
		Short:  "Run a step of a lab on this host for dsrlab on another (started by up inside the agent container)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var req lab.AgentRequest
			if err := json.NewDecoder(cmd.InOrStdin()).Decode(&req); err != nil {
				return fmt.Errorf("agent: read request: %w", err)
			}
			if req.Phase == lab.PhaseMap {
				return writeJSON(cmd.OutOrStdout(), agentMap(cmd.Context(), req))
			}
			return writeJSON(cmd.OutOrStdout(), lab.RunAgent(cmd.Context(), req))
		},
	}
}
