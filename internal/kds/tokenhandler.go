package kds

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/tokens"
)

// ZoneTokenIssuer issues zone tokens (*tokens.ZoneTokens) with the given
// scopes (tokens.ZoneFullScope when empty).
type ZoneTokenIssuer interface {
	IssueZoneTokenScoped(ctx context.Context, zone string, scope []string, validFor time.Duration) (string, error)
}

var _ ZoneTokenIssuer = (*tokens.ZoneTokens)(nil)

// zoneTokenRequest is the body of POST /tokens/zone, as Kuma takes it.
type zoneTokenRequest struct {
	Zone     string   `json:"zone"`
	Scope    []string `json:"scope"`
	ValidFor string   `json:"validFor"`
}

// DefaultZoneTokenValidity is a token's lifetime when the request does not
// say (Kuma's default: ten years).
const DefaultZoneTokenValidity = 10 * 365 * 24 * time.Hour

// ZoneTokenHandler answers POST /tokens/zone with a new zone token as
// text/plain. Mount it on the global's and a standalone control plane's
// API (behind its authentication). Scopes: "cp" (a zone control plane on
// KDS), "ingress", "egress" (zone proxies); none means all three, as Kuma.
func ZoneTokenHandler(issuer ZoneTokenIssuer, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req zoneTokenRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
			writeStdError(w, http.StatusBadRequest, "the body must be a JSON object {zone, scope, validFor}: "+err.Error())
			return
		}
		var errs validate.Errors
		root := validate.Root()
		if req.Zone == "" {
			errs.Add(root.Field("zone"), "cannot be empty")
		} else if reason := validate.Name(req.Zone); reason != "" {
			errs.Add(root.Field("zone"), reason)
		}
		for i, s := range req.Scope {
			if !tokens.ValidZoneScope(s) {
				errs.Addf(root.Field("scope").Index(i), "%q is not a supported scope: must be one of %q", s, tokens.ZoneFullScope)
			}
		}
		validFor := DefaultZoneTokenValidity
		if req.ValidFor != "" {
			d, err := time.ParseDuration(req.ValidFor)
			switch {
			case err != nil:
				errs.Add(root.Field("validFor"), "must be a duration such as 24h: "+err.Error())
			case d <= 0:
				errs.Add(root.Field("validFor"), "must be positive")
			default:
				validFor = d
			}
		}
		if !errs.Empty() {
			writeStdError(w, http.StatusBadRequest, "Resource is not valid", errs.Violations...)
			return
		}
		scope := req.Scope
		if len(scope) == 0 {
			scope = tokens.ZoneFullScope
		}
		token, err := issuer.IssueZoneTokenScoped(r.Context(), req.Zone, scope, validFor)
		if err != nil {
			writeStdError(w, http.StatusInternalServerError, fmt.Sprintf("issuing the zone token: %v", err))
			return
		}
		log.Info("zone token issued", "zone", req.Zone, "validFor", validFor, "scope", slices.Clone(scope))
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(token))
	})
}

// writeStdError writes Kuma's std-errors body.
func writeStdError(w http.ResponseWriter, status int, detail string, params ...validate.Violation) {
	title := "Invalid request"
	if status >= 500 {
		title = "Could not issue a token"
	}
	body, _ := json.Marshal(map[string]any{"type": "/std-errors", "status": status, "title": title, "detail": detail, "invalid_parameters": params})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
