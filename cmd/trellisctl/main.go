// Command trellisctl is the Trellis CLI: it manages meshes, dataplanes and
// policies through the control plane's REST API, as kumactl does for Kuma.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/trellis-mesh/trellis/internal/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ctl.Run(ctx, ctl.Options{}, os.Args[1:])
	stop()
	os.Exit(code)
}
