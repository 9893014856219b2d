package ctl

import (
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// zoneTokenRequest is the body of POST /tokens/zone (Kuma's).
type zoneTokenRequest struct {
	Zone     string   `json:"zone"`
	Scope    []string `json:"scope"`
	ValidFor string   `json:"validFor"`
}

func (r *root) generateZoneTokenCmd() *cobra.Command {
	var (
		req      zoneTokenRequest
		validFor time.Duration
	)
	cmd := &cobra.Command{
		Use:   "zone-token",
		Short: "Generate a zone token, which a zone control plane presents to the global one",
		Long: "Generate a zone token on the global control plane: a JWT signed by the global's\n" +
			"zone-token signing key that a zone control plane presents on its KDS streams\n" +
			"(TRELLIS_MULTIZONE_ZONE_TOKEN_FILE). The global accepts it only from the zone it names.",
		Example: "  trellisctl generate zone-token --zone zone-1 --valid-for 720h > zone-1.token",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Zone == "" {
				return fmt.Errorf("--zone: required, the name of the zone the token is for")
			}
			if validFor <= 0 {
				return fmt.Errorf("--valid-for %s: must be positive", validFor)
			}
			req.ValidFor = validFor.String()
			req.Scope = []string{"cp"}
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
	f.DurationVar(&validFor, "valid-for", 10*365*24*time.Hour, `how long the token is valid, e.g. "720h"`)
	return cmd
}
