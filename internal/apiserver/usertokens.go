package apiserver

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/trellis-mesh/trellis/api/validate"
)

// userTokenRequest is the body of POST /tokens/user, as Kuma takes it.
type userTokenRequest struct {
	Name   string   `json:"name"`
	Groups []string `json:"groups"`
	// ValidFor is a Go duration such as "24h".
	ValidFor string `json:"validFor"`
}

// issueUserToken answers POST /tokens/user with a new user token as
// text/plain. The authentication middleware lets only admins here.
func (s *Server) issueUserToken(w http.ResponseWriter, r *http.Request) {
	var req userTokenRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "Invalid request", "the body must be a JSON object {name, groups, validFor}: "+err.Error())
		return
	}
	var errs validate.Errors
	root := validate.Root()
	if req.Name == "" {
		errs.Add(root.Field("name"), "cannot be empty")
	}
	for i, g := range req.Groups {
		if g == "" {
			errs.Add(root.Field("groups").Index(i), "cannot be empty")
		}
	}
	var validFor time.Duration
	switch d, err := time.ParseDuration(req.ValidFor); {
	case req.ValidFor == "":
		errs.Add(root.Field("validFor"), "cannot be empty")
	case err != nil:
		errs.Add(root.Field("validFor"), "must be a duration such as 24h: "+err.Error())
	case d <= 0:
		errs.Add(root.Field("validFor"), "must be positive")
	default:
		validFor = d
	}
	if err := errs.Err(); err != nil {
		writeErr(w, err)
		return
	}
	token, err := s.authn.Tokens.IssueUserToken(r.Context(), req.Name, req.Groups, validFor)
	if err != nil {
		writeErr(w, err)
		return
	}
	by, _ := UserFrom(r.Context())
	s.log.Info("user token issued", "name", req.Name, "groups", req.Groups, "validFor", validFor, "by", by.Name)
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(token))
}
