package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/tokens"
)

// DataplaneTokenIssuer issues dataplane tokens (*tokens.DataplaneTokens).
type DataplaneTokenIssuer interface {
	IssueDataplaneToken(ctx context.Context, id tokens.DataplaneIdentity, validFor time.Duration) (string, error)
}

var _ DataplaneTokenIssuer = (*tokens.DataplaneTokens)(nil)

// dataplaneTokenRequest is the body of POST /tokens/dataplane, as Kuma
// takes it.
type dataplaneTokenRequest struct {
	Name string              `json:"name"`
	Mesh string              `json:"mesh"`
	Tags map[string][]string `json:"tags"`
	Type string              `json:"type"`
	// ValidFor is a Go duration such as "24h"; empty means ten years, as
	// in Kuma.
	ValidFor string `json:"validFor"`
}

// DataplaneTokenHandler answers POST /tokens/dataplane with a new
// dataplane token as text/plain. Mount it with
// Handle("POST /tokens/dataplane", ...); the authentication middleware
// guards it like every other path.
func (s *Server) DataplaneTokenHandler(issuer DataplaneTokenIssuer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req dataplaneTokenRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "Invalid request", "the body must be a JSON object {name, mesh, tags, type, validFor}: "+err.Error())
			return
		}
		validFor, err := s.checkDataplaneTokenRequest(r.Context(), &req)
		if err != nil {
			writeErr(w, err)
			return
		}
		id := tokens.DataplaneIdentity{Name: req.Name, Mesh: req.Mesh, Tags: req.Tags, Type: req.Type}
		if id.Type == "" {
			id.Type = tokens.DataplaneProxyType
		}
		token, err := issuer.IssueDataplaneToken(r.Context(), id, validFor)
		if errors.Is(err, tokens.ErrNoDataplaneSigningKey) {
			writeError(w, http.StatusInternalServerError, "Could not issue a token", err.Error()+
				"; apply a Secret "+tokens.DataplaneSigningKeyName(req.Mesh, 1)+" holding a base64 PEM RSA key")
			return
		}
		if err != nil {
			writeErr(w, err)
			return
		}
		by, _ := UserFrom(r.Context())
		s.log.Info("dataplane token issued", "mesh", req.Mesh, "name", req.Name, "tags", req.Tags, "validFor", validFor, "by", by.Name)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(token))
	})
}

// checkDataplaneTokenRequest validates the request's fields (paths as in
// the body) and returns the token's lifetime.
func (s *Server) checkDataplaneTokenRequest(ctx context.Context, req *dataplaneTokenRequest) (time.Duration, error) {
	var errs validate.Errors
	root := validate.Root()
	if req.Mesh == "" {
		errs.Add(root.Field("mesh"), "cannot be empty")
	} else if d, ok := s.reg.ByKind(kinds.Mesh); ok {
		if _, err := s.mgr.Get(ctx, d, "", req.Mesh); errors.Is(err, store.ErrNotFound) {
			errs.Addf(root.Field("mesh"), "mesh %q does not exist", req.Mesh)
		} else if err != nil {
			return 0, err
		}
	}
	if req.Name != "" {
		if reason := validate.Name(req.Name); reason != "" {
			errs.Add(root.Field("name"), reason)
		}
	}
	if req.Type != "" && req.Type != tokens.DataplaneProxyType {
		errs.Addf(root.Field("type"), "%q is not a supported proxy type: must be %q", req.Type, tokens.DataplaneProxyType)
	}
	for _, tag := range validate.SortedKeys(req.Tags) {
		p := root.Field("tags").Key(tag)
		if tag == "" {
			errs.Add(p, "tag name cannot be empty")
		}
		if len(req.Tags[tag]) == 0 {
			errs.Add(p, "must list at least one value")
		}
		for i, v := range req.Tags[tag] {
			if v == "" {
				errs.Add(p.Index(i), "cannot be empty")
			}
		}
	}
	validFor := tokens.DefaultDataplaneTokenValidity
	if req.ValidFor != "" {
		switch d, err := time.ParseDuration(req.ValidFor); {
		case err != nil:
			errs.Add(root.Field("validFor"), "must be a duration such as 24h: "+err.Error())
		case d <= 0:
			errs.Add(root.Field("validFor"), "must be positive")
		default:
			validFor = d
		}
	}
	return validFor, errs.Err()
}
