package ctl

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// zoneTokenRequest is the body of POST /tokens/zone (Kuma's).
type zoneTokenRequest struct {
	Zone     string   `json:"zone"`
	Scope    []string `json:"scope"`
	ValidFor string   `json:"validFor"`
}

// zoneScopes are the scopes of a zone token (Kuma's), all by default.
var zoneScopes = []string{"cp", "ingress", "egress"}

func (r *root) generateZoneTokenCmd() *cobra.Command {
	var (
		req      zoneTokenRequest
		validFor time.Duration
	)
	cmd := &cobra.Command{
		Use:   "zone-token",
		Short: "Generate a zone token, which proves the identity of a zone control plane, zone ingress or zone egress",
		Long: "Generate a zone token on the global (or standalone) control plane: a JWT signed by its\n" +
			"zone-token signing key. Scope \"cp\": a zone control plane presents it on its KDS streams\n" +
			"(TRELLIS_MULTIZONE_ZONE_TOKEN_FILE). Scopes \"ingress\", \"egress\": a zone proxy presents it\n" +
			"(trellis-dp run --proxy-type ingress|egress --dataplane-token-file). A token is accepted\n" +
			"only in the zone it names. Without --scope the token carries all three scopes.",
		Example: "  trellisctl generate zone-token --zone zone-1 --scope cp --valid-for 720h > zone-1.token\n" +
			"  trellisctl generate zone-token --zone zone-1 --scope ingress --valid-for 720h > ingress.token\n" +
			"  trellisctl generate zone-token --zone zone-1 --scope ingress,egress",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Zone == "" {
				return fmt.Errorf("--zone: required, the name of the zone the token is for")
			}
			if validFor <= 0 {
				return fmt.Errorf("--valid-for %s: must be positive", validFor)
			}
			for _, sc := range req.Scope {
				if !slices.Contains(zoneScopes, sc) {
					return fmt.Errorf("--scope %q: must be one of %s", sc, strings.Join(zoneScopes, ", "))
				}
			}
			req.ValidFor = validFor.String()
			c, err := r.client()
			if err != nil {
				return err
			}
			var token []byte
			if _, err := c.Do(cmd.Context(), http.MethodPost, "/tokens/zone", nil, req, &token); err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(token)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Zone, "zone", "", "name of the zone the token is for")
	f.StringSliceVar(&req.Scope, "scope", slices.Clone(zoneScopes), `what the token may identify: "cp", "ingress", "egress" (repeat or comma-separate)`)
	f.DurationVar(&validFor, "valid-for", 10*365*24*time.Hour, `how long the token is valid, e.g. "720h"`)
	return cmd
}
