package ctl

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// dataplaneTokenRequest is the body of POST /tokens/dataplane (Kuma's).
type dataplaneTokenRequest struct {
	Name     string              `json:"name,omitempty"`
	Mesh     string              `json:"mesh"`
	Tags     map[string][]string `json:"tags,omitempty"`
	Type     string              `json:"type,omitempty"`
	ValidFor string              `json:"validFor"`
}

func (r *root) generateDataplaneTokenCmd() *cobra.Command {
	var (
		req      dataplaneTokenRequest
		tags     []string
		validFor time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dataplane-token",
		Short: "Generate a dataplane token, which trellis-dp presents to the control plane",
		Long: "Generate a dataplane token: a JWT signed by the mesh's signing key that trellis-dp\n" +
			"presents with --dataplane-token-file. The control plane accepts a proxy only when the\n" +
			"token is for its mesh, for its name (when --name is given) and for its tags (each --tag:\n" +
			"the Dataplane must carry the tag, with only the values listed).",
		Example: "  # One token for every instance of the backend service\n" +
			"  trellisctl generate dataplane-token --mesh default --tag kuma.io/service=backend --valid-for 24h > backend.token\n" +
			"  # A token for one Dataplane\n" +
			"  trellisctl generate dataplane-token --mesh default --name backend-1 --valid-for 24h\n" +
			"  # Two services on one proxy\n" +
			"  trellisctl generate dataplane-token --tag kuma.io/service=web,web-api --valid-for 720h",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if req.Tags, err = parseTokenTags(tags); err != nil {
				return err
			}
			if validFor <= 0 {
				return fmt.Errorf("--valid-for %s: must be positive", validFor)
			}
			req.ValidFor = validFor.String()
			c, err := r.client()
			if err != nil {
				return err
			}
			var token []byte
			if _, err := c.Do(cmd.Context(), http.MethodPost, "/tokens/dataplane", nil, req, &token); err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(token)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "name of the Dataplane the token is for (default: any)")
	f.StringVarP(&req.Mesh, "mesh", "m", DefaultMesh, "mesh of the Dataplane")
	f.StringArrayVar(&tags, "tag", nil, "tag the Dataplane must have, key=value; several values separated by commas (repeatable)")
	f.StringVar(&req.Type, "proxy-type", "dataplane", `type of the proxy ("dataplane")`)
	f.DurationVar(&validFor, "valid-for", 10*365*24*time.Hour, `how long the token is valid, e.g. "24h"`)
	return cmd
}

// parseTokenTags reads --tag flags: key=v1[,v2...]; a key given twice
// gets both lists.
func parseTokenTags(flags []string) (map[string][]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	out := map[string][]string{}
	for _, f := range flags {
		key, values, ok := strings.Cut(f, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.TrimSpace(values) == "" {
			return nil, fmt.Errorf("--tag %q: want key=value, e.g. kuma.io/service=backend", f)
		}
		for _, v := range strings.Split(values, ",") {
			if v = strings.TrimSpace(v); v != "" {
				out[key] = append(out[key], v)
			}
		}
	}
	return out, nil
}
