// Package tokens issues and validates the control plane's JWTs: user
// tokens, which authenticate callers of the REST API, and dataplane tokens,
// which proxies present to the DP server. Signing keys and revocation lists
// live in the store as (Global)Secrets, so every control-plane instance
// sharing a store validates the same tokens.
package tokens

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trellis-mesh/trellis/internal/store"
)

// User token names and groups, as Kuma spells them.
const (
	// UserAdminGroup is the group whose members may do anything on the API.
	UserAdminGroup = "mesh-system:admin"
	// UserAdminName is the user name of the bootstrap admin token.
	UserAdminName = "mesh-system:admin"
	// UserSigningKeyPrefix starts the name of every GlobalSecret holding a
	// user-token signing key; the serial number follows.
	UserSigningKeyPrefix = "user-token-signing-key-"
	// UserRevocationsName is the GlobalSecret listing revoked token IDs
	// (jti), separated by commas or newlines.
	UserRevocationsName = "user-token-revocations"
)

// ErrInvalidUserToken is wrapped by every error that says the token itself
// is bad (malformed, badly signed, expired, revoked, signed by a deleted
// key); other errors from ValidateUserToken are the store's.
var ErrInvalidUserToken = errors.New("invalid user token")

// UserClaims are the claims of a user token. Name and Groups keep Kuma's
// claim names (capitalised), so a Kuma user token's payload reads the same.
type UserClaims struct {
	Name   string   `json:"Name"`
	Groups []string `json:"Groups,omitempty"`
	jwt.RegisteredClaims
}

// InUserGroup reports whether the user belongs to group.
func (c *UserClaims) InUserGroup(group string) bool { return slices.Contains(c.Groups, group) }

// UserTokens issues and validates user tokens with the signing keys and the
// revocation list kept in st. It is safe for concurrent use.
type UserTokens struct {
	st   store.Store
	keys *userKeyCache
	// now is the clock; tests move it.
	now func() time.Time
}

// NewUserTokens returns user tokens backed by st.
func NewUserTokens(st store.Store) *UserTokens {
	return &UserTokens{st: st, keys: newUserKeyCache(), now: time.Now}
}

// IssueUserToken signs a token for user name in groups, valid for validFor,
// with the newest signing key.
func (u *UserTokens) IssueUserToken(ctx context.Context, name string, groups []string, validFor time.Duration) (string, error) {
	if name == "" {
		return "", errors.New("issuing a user token: the name cannot be empty")
	}
	if validFor <= 0 {
		return "", errors.New("issuing a user token: validFor must be positive")
	}
	serial, err := u.newestUserSigningSerial(ctx)
	if err != nil {
		return "", err
	}
	key, err := u.userSigningKey(ctx, serial)
	if err != nil {
		return "", err
	}
	now := u.now()
	claims := &UserClaims{
		Name:   name,
		Groups: slices.Clone(groups),
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        rand.Text(),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(now.Add(validFor)),
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = strconv.Itoa(serial)
	signed, err := tok.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("signing the user token: %w", err)
	}
	return signed, nil
}

// ValidateUserToken checks the token's signature against the signing key
// its kid names, its expiry and the revocation list, and returns its
// claims. Token problems wrap ErrInvalidUserToken.
func (u *UserTokens) ValidateUserToken(ctx context.Context, token string) (*UserClaims, error) {
	var storeErr error
	claims := &UserClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		serial, err := strconv.Atoi(kid)
		if err != nil || serial <= 0 {
			return nil, fmt.Errorf("the token has no valid kid header (signing key serial): %q", kid)
		}
		key, err := u.userSigningKey(ctx, serial)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("signing key %s%d does not exist (it was rotated out)", UserSigningKeyPrefix, serial)
		}
		if err != nil {
			storeErr = err
			return nil, err
		}
		return &key.PublicKey, nil
	}, jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithExpirationRequired(), jwt.WithTimeFunc(u.now))
	if storeErr != nil {
		return nil, fmt.Errorf("validating a user token: %w", storeErr)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidUserToken, err)
	}
	if claims.Name == "" {
		return nil, fmt.Errorf("%w: the token names no user", ErrInvalidUserToken)
	}
	if claims.ID == "" {
		return nil, fmt.Errorf("%w: the token has no ID (jti)", ErrInvalidUserToken)
	}
	revoked, err := u.userTokenRevoked(ctx, claims.ID)
	if err != nil {
		return nil, fmt.Errorf("validating a user token: %w", err)
	}
	if revoked {
		return nil, fmt.Errorf("%w: the token was revoked", ErrInvalidUserToken)
	}
	return claims, nil
}
