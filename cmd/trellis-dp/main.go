// Command trellis-dp is the Trellis data-plane proxy. The proxy runtime
// (xDS client, listeners, clusters) is built by the data-path issue; until
// then this binary only reports its version.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/version"
)

func main() {
	root := &cobra.Command{Use: "trellis-dp", Short: "Trellis data-plane proxy", SilenceUsage: true}
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "trellis-dp %s (commit %s)\n", version.Version, version.Commit())
		},
	})
	root.AddCommand(&cobra.Command{
		Use:   "run",
		Short: "Run the proxy (not available in this build yet)",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("trellis-dp run: the proxy runtime is not part of this build yet")
		},
	})
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}
