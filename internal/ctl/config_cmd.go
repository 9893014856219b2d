package ctl

import (
	"errors"
	"fmt"
	"net/url"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/internal/apiclient"
)

func (r *root) configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Manage trellisctl's config file (control planes)",
	}
	cps := &cobra.Command{
		Use:     "control-planes",
		Aliases: []string{"control-plane", "cp"},
		Short:   "Manage the known control planes",
	}
	cps.AddCommand(r.cpAddCmd(), r.cpListCmd(), r.cpSwitchCmd(), r.cpRemoveCmd())
	cmd.AddCommand(cps, r.configViewCmd())
	return cmd
}

func (r *root) cpAddCmd() *cobra.Command {
	var name, address, authType string
	var authConf map[string]string
	var overwrite, noCheck bool
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Add a control plane and make it the active one",
		Long: "Add a control plane and make it the active one. Remote control planes need an admin user\n" +
			"token (--auth-type tokens --auth-conf token=..., or --token/--token-file; the control plane\n" +
			"writes one to <dataDir>/admin-user-token on first start) and, over HTTPS, the CA certificate\n" +
			"(--ca-cert-file <dataDir>/certs/api-server.crt). The token is stored in the config file; the\n" +
			"CA file only by its path.",
		Example: "  trellisctl config control-planes add --name prod --address https://cp.example.com:5682 \\\n" +
			"    --ca-cert-file api-server.crt --auth-type tokens --auth-conf token=$(cat admin-user-token)\n" +
			"  trellisctl config control-planes add --name local --address http://127.0.0.1:5681 --overwrite",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := url.ParseRequestURI(address)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("--address %q is not a valid API address: use http://HOST:PORT or https://HOST:PORT", address)
			}
			cfg, path, err := r.loadConfig()
			if err != nil {
				return err
			}
			if cfg.controlPlane(name) != nil && !overwrite {
				return fmt.Errorf("a control plane named %q already exists: use --overwrite to replace it", name)
			}
			api, err := r.credentialsToStore(authType, authConf)
			if err != nil {
				return err
			}
			api.URL = address
			if !noCheck {
				token, _ := storedToken(api)
				c, err := r.clientFor(target{url: address, token: token, caCertFile: api.CACertFile, skipVerify: api.SkipVerify})
				if err != nil {
					return err
				}
				idx, err := c.Index(cmd.Context())
				if err != nil {
					reason := err.Error()
					if te := (*apiclient.TransportError)(nil); errors.As(err, &te) {
						reason = transportReason(te)
					}
					if hint := authHint(err); hint != "" {
						return fmt.Errorf("the control plane at %s refused GET /: %s%s", address, reason, hint)
					}
					return fmt.Errorf("the control plane at %s does not answer GET /: %s\n"+
						"Check the address, or add it anyway with --no-check.", address, reason)
				}
				if idx.Product != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "reached %s %s at %s\n", idx.Product, idx.Version, address)
				}
			}
			cfg.addControlPlane(ControlPlane{Name: name, Coordinates: Coordinates{APIServer: api}}, overwrite)
			if err := saveConfig(path, cfg); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added Control Plane %q\nswitched active Control Plane to %q\n", name, name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "name of the control plane (required)")
	f.StringVar(&address, "address", "", "URL of its API server, e.g. http://127.0.0.1:5681 (required)")
	f.BoolVar(&overwrite, "overwrite", false, "replace a control plane of the same name")
	f.BoolVar(&noCheck, "no-check", false, "do not check that the control plane answers")
	f.BoolVar(&noCheck, "skip-check", false, "same as --no-check (kumactl's name)")
	f.StringVar(&authType, "auth-type", "", `authentication type: "tokens" (a user token, given with --auth-conf token=...)`)
	f.StringToStringVar(&authConf, "auth-conf", nil, "authentication settings of --auth-type, key=value (tokens: token=YOUR_TOKEN)")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("address")
	return cmd
}

func (r *root) cpListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the control planes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := r.loadConfig()
			if err != nil {
				return err
			}
			active := cfg.current()
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "ACTIVE\tNAME\tADDRESS")
			for _, cp := range cfg.ControlPlanes {
				mark := ""
				if active != nil && active.Name == cp.Name {
					mark = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", mark, cp.Name, cp.Coordinates.APIServer.URL)
			}
			return tw.Flush()
		},
	}
}

func (r *root) cpSwitchCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "switch",
		Short: "Make another control plane the active one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, path, err := r.loadConfig()
			if err != nil {
				return err
			}
			if !cfg.switchTo(name) {
				return fmt.Errorf("there is no control plane named %q (see `trellisctl config control-planes list`)", name)
			}
			if err := saveConfig(path, cfg); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "switched active Control Plane to %q\n", name)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the control plane (required)")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func (r *root) cpRemoveCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:     "remove",
		Aliases: []string{"rm"},
		Short:   "Forget a control plane",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, path, err := r.loadConfig()
			if err != nil {
				return err
			}
			if !cfg.removeControlPlane(name) {
				return fmt.Errorf("there is no control plane named %q (see `trellisctl config control-planes list`)", name)
			}
			if err := saveConfig(path, cfg); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "removed Control Plane %q\n", name)
			if cp := cfg.current(); cp != nil {
				fmt.Fprintf(out, "switched active Control Plane to %q\n", cp.Name)
			} else {
				fmt.Fprintln(out, "there is no active Control Plane left: add one with `trellisctl config control-planes add`")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the control plane (required)")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func (r *root) configViewCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "view",
		Short: "Show the config (the file's content, or the defaults when there is none)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := r.loadConfig()
			if err != nil {
				return err
			}
			data, err := yaml.Marshal(cfg)
			if err != nil {
				return fmt.Errorf("encoding the config: %w", err)
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
}
