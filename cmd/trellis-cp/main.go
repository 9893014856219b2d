// Command trellis-cp is the Trellis control plane.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/config"
	"github.com/trellis-mesh/trellis/internal/cp"
	"github.com/trellis-mesh/trellis/internal/version"
)

func main() {
	if err := root().Execute(); err != nil {
		os.Exit(1)
	}
}

func root() *cobra.Command {
	cmd := &cobra.Command{
		Use:           "trellis-cp",
		Short:         "Trellis control plane",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	cmd.AddCommand(runCmd(), configCmd(), versionCmd())
	return cmd
}

func runCmd() *cobra.Command {
	var configFile string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the control plane",
		Long: "Run the control plane. Settings come from documented defaults (trellis-cp config defaults),\n" +
			"then the --config file, then TRELLIS_* environment variables.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configFile, os.Getenv)
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			log.Info("starting trellis-cp", "version", version.Version, "dataDir", cfg.DataDir, "store", cfg.Store.Type)
			return cp.Run(ctx, cfg, log, nil)
		},
	}
	cmd.Flags().StringVarP(&configFile, "config", "c", "", "YAML configuration file")
	return cmd
}

func configCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "defaults",
		Short: "Print every setting with its default value and environment variable",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprint(cmd.OutOrStdout(), config.DefaultsYAML())
		},
	})
	return cmd
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "trellis-cp %s (commit %s)\n", version.Version, version.Commit())
		},
	}
}

func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
