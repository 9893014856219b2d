package ctl

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/tokens"
)

func (r *root) generateUserTokenCmd() *cobra.Command {
	var (
		name     string
		groups   []string
		validFor time.Duration
	)
	cmd := &cobra.Command{
		Use:   "user-token",
		Short: "Generate a user token, which authenticates a client of the control plane's API",
		Long: "Generate a user token: a JWT signed by the control plane that API clients send as\n" +
			"\"Authorization: Bearer <token>\" (trellisctl: --token, $" + EnvAPIToken + " or the config file).\n" +
			"Users in group " + tokens.UserAdminGroup + " may use the whole API; tokens of other users are refused\n" +
			"for now. Only admins may generate tokens.",
		Example: "  trellisctl generate user-token --name jane@example.com --group " + tokens.UserAdminGroup + " --valid-for 24h\n" +
			"  trellisctl generate user-token --name ci --group ci --group " + tokens.UserAdminGroup + " --valid-for 720h > ci.token",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if validFor <= 0 {
				return fmt.Errorf("--valid-for %s: must be positive, e.g. 24h", validFor)
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			token, err := c.IssueUserToken(cmd.Context(), name, groups, validFor)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), token)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "name of the user (required)")
	f.StringSliceVar(&groups, "group", nil, "group of the user (repeatable, or comma-separated)")
	f.DurationVar(&validFor, "valid-for", 0, `how long the token is valid, e.g. "24h" (required)`)
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("valid-for")
	return cmd
}
