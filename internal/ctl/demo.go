package ctl

import (
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/demo"
)

func (r *root) demoCmd() *cobra.Command {
	o := demo.Options{APIPort: demo.DefaultAPIPort, Backends: 1, ReadyTimeout: time.Minute}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a small mesh on this machine: a control plane, two apps and their sidecars",
		Long: "Run a whole Trellis mesh on loopback until Ctrl-C: a control plane (trellis-cp) on the\n" +
			"embedded store, a frontend and a backend app served by trellisctl itself, and one sidecar\n" +
			"(trellis-dp) per app instance. The frontend calls the backend through its sidecar, so\n" +
			"opening the printed frontend URL sends a request through both sidecars.\n\n" +
			"trellis-cp and trellis-dp are taken from the folder of trellisctl, else from PATH (`make build`\n" +
			"puts all three in bin/). Logs and the generated Dataplane files go to the data dir.",
		Example: "  trellisctl demo\n" +
			"  trellisctl demo --backends 3\n" +
			"  trellisctl demo --api-port 15681 --data-dir ./demo-data",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.APIPortFallback = !cmd.Flags().Changed("api-port")
			o.CtlCommand = ctlCommand()
			o.Out = cmd.OutOrStdout()
			return demo.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", "", "folder for the control plane's data, the Dataplane files and the logs (default: a temporary folder, removed at exit)")
	f.IntVar(&o.APIPort, "api-port", demo.DefaultAPIPort, "control plane API port on 127.0.0.1 (0: a free port); by default a free port is used when 5681 is busy")
	f.IntVar(&o.Backends, "backends", 1, "number of backend instances, each with its own sidecar")
	f.DurationVar(&o.ReadyTimeout, "timeout", time.Minute, "how long start-up may take")
	return cmd
}

// ctlCommand is how hints spell this program: its path when run by one
// (bin/trellisctl), else plain trellisctl.
func ctlCommand() string {
	arg0 := os.Args[0]
	if filepath.Base(arg0) == "trellisctl" && arg0 != "trellisctl" {
		return arg0
	}
	return "trellisctl"
}
