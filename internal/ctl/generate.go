package ctl

import (
	"github.com/spf13/cobra"
)

// generateCmd is `trellisctl generate`: credentials the control plane
// issues. Each kind of token adds its subcommand here.
func (r *root) generateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Generate tokens the control plane issues",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(r.generateDataplaneTokenCmd(), r.generateUserTokenCmd(), r.generateZoneTokenCmd())
	return cmd
}
