// Command trellis-dp is the Trellis data-plane proxy: it fetches its
// bootstrap from the control plane, opens one ADS stream and runs the
// listeners and clusters it is sent, in-process.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/version"
)

func main() {
	tuneRuntime()
	if err := newRootCommand().Execute(); err != nil {
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{Use: "trellis-dp", Short: "Trellis data-plane proxy", SilenceUsage: true}
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "trellis-dp %s (commit %s)\n", version.Version, version.Commit())
		},
	})
	root.AddCommand(newRunCommand())
	return root
}
