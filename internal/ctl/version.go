package ctl

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/version"
)

func (r *root) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show trellisctl's version and, when reachable, the control plane's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Client: trellisctl %s (commit %s)\n", version.Version, version.Commit())
			c, err := r.client()
			if err != nil {
				fmt.Fprintf(out, "Control plane: unknown (%v)\n", err)
				return nil
			}
			idx, err := c.Index(cmd.Context())
			if err != nil {
				fmt.Fprintf(out, "Control plane: not reachable at %s\n", c.BaseURL())
				return nil
			}
			product := idx.Product
			if product == "" {
				product = "unknown product"
			}
			fmt.Fprintf(out, "Control plane: %s %s", product, idx.Version)
			if idx.BasedOnKuma != "" {
				fmt.Fprintf(out, " (Kuma %s API)", idx.BasedOnKuma)
			}
			fmt.Fprintf(out, " at %s\n", c.BaseURL())
			return nil
		},
	}
}
