package apiserver

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/tokens"
)

// UserTokenService issues and validates user tokens (*tokens.UserTokens).
type UserTokenService interface {
	IssueUserToken(ctx context.Context, name string, groups []string, validFor time.Duration) (string, error)
	ValidateUserToken(ctx context.Context, token string) (*tokens.UserClaims, error)
}

var _ UserTokenService = (*tokens.UserTokens)(nil)

// Authn configures who may call the API. Without it (tests of other
// packages), every request is allowed.
type Authn struct {
	// Tokens validates the bearer tokens of requests and issues new ones
	// (POST /tokens/user).
	Tokens UserTokenService
	// LocalhostIsAdmin lets requests from a loopback address in without a
	// token, as an admin.
	LocalhostIsAdmin bool
}

// User is the caller of a request, as authentication found it.
type User struct {
	Name   string
	Groups []string
}

// localhostUser is who a token-less request from a loopback address is
// when apiServer.authn.localhostIsAdmin is on.
var localhostUser = User{Name: "localhost", Groups: []string{tokens.UserAdminGroup}}

type userKey struct{}

// UserFrom returns the authenticated caller of a request; false when
// authentication is off.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey{}).(User)
	return u, ok
}

// UseAuthn turns authentication on. Call it before Handler.
func (s *Server) UseAuthn(a Authn) { s.authn = &a }

// openPaths answer without authentication: load balancers and process
// supervisors probe them.
var openPaths = map[string]bool{"/ready": true, "/healthy": true}

// authenticate lets the request through to next when its caller is an
// admin: a valid bearer token whose user is in the admin group, or (with
// LocalhostIsAdmin) no token at all from a loopback address. A token, when
// sent, always decides, even from localhost. Forwarding headers
// (X-Forwarded-For) are never trusted: only the connection's address counts.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.authn == nil || openPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		user, ok := s.identify(w, r)
		if !ok {
			return
		}
		if !slices.Contains(user.Groups, tokens.UserAdminGroup) {
			s.log.Info("API request denied", "user", user.Name, "groups", user.Groups, "method", r.Method, "path", r.URL.Path)
			writeError(w, http.StatusForbidden, "Access Denied",
				"user \""+user.Name+"\" is not in group "+tokens.UserAdminGroup+", which this API requires")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
	})
}

// identify finds the caller, or answers 401 (or 500 when the store fails)
// and returns false.
func (s *Server) identify(w http.ResponseWriter, r *http.Request) (User, bool) {
	header := r.Header.Get("Authorization")
	if header == "" {
		if s.authn.LocalhostIsAdmin && isLoopback(r.RemoteAddr) {
			return localhostUser, true
		}
		detail := "this API needs an admin user token from clients that are not on the control plane's host: send Authorization: Bearer <token>"
		if isLoopback(r.RemoteAddr) {
			detail = "this API needs an admin user token (apiServer.authn.localhostIsAdmin is off): send Authorization: Bearer <token>"
		}
		unauthenticated(w, detail)
		return User{}, false
	}
	scheme, token, _ := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		unauthenticated(w, "the Authorization header must be \"Bearer <user token>\"")
		return User{}, false
	}
	claims, err := s.authn.Tokens.ValidateUserToken(r.Context(), token)
	if errors.Is(err, tokens.ErrInvalidUserToken) {
		s.log.Info("API request with an invalid user token", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "reason", err.Error())
		unauthenticated(w, err.Error())
		return User{}, false
	}
	if err != nil {
		writeErr(w, err)
		return User{}, false
	}
	return User{Name: claims.Name, Groups: claims.Groups}, true
}

func unauthenticated(w http.ResponseWriter, detail string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="trellis"`)
	writeError(w, http.StatusUnauthorized, "Unauthenticated", detail)
}

// isLoopback reports whether a request's RemoteAddr (host:port) is a
// loopback address (127.0.0.0/8, ::1, or IPv4-mapped 127.x).
func isLoopback(remoteAddr string) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	return ap.Addr().Unmap().IsLoopback()
}
