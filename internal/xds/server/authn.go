package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/tokens"
)

// Authentication types of Config.Authn.
const (
	// AuthnDPToken requires a dataplane token (the default): in the
	// bootstrap request's dataplaneToken, and on the ADS stream as gRPC
	// metadata "authorization: Bearer <token>".
	AuthnDPToken = "dpToken"
	// AuthnNone lets any proxy that reaches the server register.
	AuthnNone = "none"
)

// AuthorizationMetadata is the gRPC metadata key carrying a proxy's token.
const AuthorizationMetadata = "authorization"

// authnRequired reports whether proxies must present a token.
func (s *Server) authnRequired() bool { return s.cfg.Authn != AuthnNone }

// tokenFromContext reads the token of an incoming stream's metadata
// ("authorization: Bearer <token>"; the scheme is optional, as gRPC's JWT
// call credentials and a bare token both occur).
func tokenFromContext(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get(AuthorizationMetadata) {
		v = strings.TrimSpace(v)
		if scheme, rest, ok := strings.Cut(v, " "); ok && strings.EqualFold(scheme, "Bearer") {
			v = strings.TrimSpace(rest)
		}
		if v != "" {
			return v
		}
	}
	return ""
}

// authenticateDataplane checks the token a proxy presented with its
// Dataplane: valid in the Dataplane's mesh, and its name and tags match.
func (s *Server) authenticateDataplane(ctx context.Context, token string, dp *resource.Resource) error {
	if !s.authnRequired() {
		return nil
	}
	spec, _ := dp.Spec.(*mesh.Dataplane)
	_, err := s.tokens.AuthenticateDataplane(ctx, token, dp.Meta.Mesh, dp.Meta.Name, spec)
	return err
}

// authenticateStream checks the token of a stream's proxy once it is
// identified: a sidecar's against its Dataplane, a proxyless client's
// against its mesh only. A refusal is a gRPC Unauthenticated error, logged
// at warn with the proxy's name and the reason; a store failure is
// Unavailable, so the proxy retries.
func (s *Server) authenticateStream(ctx context.Context, token string, info *nodeInfo) error {
	if info.zoneProxy != "" {
		return s.authenticateZoneProxy(ctx, token, info) // zoneproxy.go
	}
	if !s.authnRequired() {
		return nil
	}
	var err error
	if info.dataplane != nil {
		err = s.authenticateDataplane(ctx, token, info.dataplane)
	} else {
		_, err = s.tokens.ValidateDataplaneToken(ctx, token, info.key.Mesh)
	}
	if err == nil {
		return nil
	}
	if errors.Is(err, tokens.ErrInvalidDataplaneToken) {
		s.log.Warn("refusing a proxy: dataplane token", "proxy", info.key.String(), "node", info.nodeID, "proxyless", info.proxyless, "reason", err.Error())
		return status.Error(codes.Unauthenticated, fmt.Sprintf("proxy %s: %v", info.key, err))
	}
	return status.Error(codes.Unavailable, fmt.Sprintf("proxy %s: checking its dataplane token: %v", info.key, err))
}

// authorizeBootstrap checks a bootstrap request's token against its
// Dataplane and answers 401 with the reason when it is refused (500 when
// the store fails). It reports whether the request may go on.
func (s *Server) authorizeBootstrap(w http.ResponseWriter, r *http.Request, token string, dp *resource.Resource) bool {
	err := s.authenticateDataplane(r.Context(), token, dp)
	switch {
	case err == nil:
		return true
	case errors.Is(err, tokens.ErrInvalidDataplaneToken):
		s.log.Warn("refusing a bootstrap: dataplane token", "proxy", dp.Meta.Mesh+"/"+dp.Meta.Name, "remote", r.RemoteAddr, "reason", err.Error())
		writeStdError(w, http.StatusUnauthorized, err.Error())
	default:
		s.log.Error("checking a dataplane token", "proxy", dp.Meta.Mesh+"/"+dp.Meta.Name, "err", err)
		writeStdError(w, http.StatusInternalServerError, "checking the dataplane token failed; see the control plane's log")
	}
	return false
}
