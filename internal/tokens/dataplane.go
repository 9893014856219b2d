package tokens

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/store"
)

// DataplaneProxyType is the only proxy type dataplane tokens are issued for
// so far (Kuma also has ingress and egress).
const DataplaneProxyType = "dataplane"

// DefaultDataplaneTokenValidity is how long a token lives when the request
// does not say: ten years, as Kuma keeps it for old scripts. Pass validFor.
const DefaultDataplaneTokenValidity = 10 * 365 * 24 * time.Hour

// dataplaneClockSkew is how far before its issue time a token is already
// valid, for control planes and proxies whose clocks disagree.
const dataplaneClockSkew = 5 * time.Minute

// ErrInvalidDataplaneToken is wrapped by every refusal of a token: the
// reason is one of the ErrDataplaneToken* sentinels, wrapped too. Errors
// that do not wrap it come from the store (retry later, not the proxy's
// fault).
var ErrInvalidDataplaneToken = errors.New("invalid dataplane token")

// Reasons a dataplane token is refused, each wrapped with
// ErrInvalidDataplaneToken.
var (
	// ErrDataplaneTokenMissing: the proxy presented no token.
	ErrDataplaneTokenMissing = errors.New("no token presented")
	// ErrDataplaneTokenMalformed: not a JWT, or claims of the wrong shape.
	ErrDataplaneTokenMalformed = errors.New("malformed token")
	// ErrDataplaneTokenSignature: the signature does not verify with the
	// key the token names.
	ErrDataplaneTokenSignature = errors.New("bad signature")
	// ErrDataplaneTokenUnknownKey: the signing key the token names (kid)
	// does not exist in the mesh, e.g. it was rotated out.
	ErrDataplaneTokenUnknownKey = errors.New("unknown signing key")
	// ErrDataplaneTokenExpired: past its exp (or before its nbf).
	ErrDataplaneTokenExpired = errors.New("token expired")
	// ErrDataplaneTokenRevoked: its jti is in the mesh's revocation list.
	ErrDataplaneTokenRevoked = errors.New("token revoked")
	// ErrDataplaneTokenMeshMismatch: issued for another mesh.
	ErrDataplaneTokenMeshMismatch = errors.New("mesh mismatch")
	// ErrDataplaneTokenNameMismatch: issued for another Dataplane name.
	ErrDataplaneTokenNameMismatch = errors.New("name mismatch")
	// ErrDataplaneTokenTagMismatch: the Dataplane lacks a tag the token
	// requires, or has a value of it the token does not allow.
	ErrDataplaneTokenTagMismatch = errors.New("tag mismatch")
)

// refuseDataplaneToken builds a refusal: "invalid dataplane token: <reason>: <detail>".
func refuseDataplaneToken(reason error, format string, args ...any) error {
	if format == "" {
		return fmt.Errorf("%w: %w", ErrInvalidDataplaneToken, reason)
	}
	return fmt.Errorf("%w: %w: %s", ErrInvalidDataplaneToken, reason, fmt.Sprintf(format, args...))
}

// DataplaneClaims are the claims of a dataplane token. The claim names are
// Kuma's (capitalised), so a token's payload reads the same in both.
type DataplaneClaims struct {
	// Name binds the token to one Dataplane name; empty means any.
	Name string `json:"Name,omitempty"`
	// Mesh is the mesh the token is valid in.
	Mesh string `json:"Mesh"`
	// Tags the Dataplane must carry: for each tag, the values its
	// inbounds (or gateway) may have. Empty means any tags.
	Tags map[string][]string `json:"Tags,omitempty"`
	// Type is the proxy type, "dataplane".
	Type string `json:"Type,omitempty"`
	jwt.RegisteredClaims
}

// DataplaneIdentity is what a token is issued for.
type DataplaneIdentity struct {
	Name string
	Mesh string
	Tags map[string][]string
	Type string
}

// DataplaneTokens issues and validates dataplane tokens with the signing
// keys and revocation lists kept as mesh Secrets in st. It is safe for
// concurrent use.
type DataplaneTokens struct {
	st   store.Store
	keys *dataplaneKeyCache
	// now is the clock; tests move it.
	now func() time.Time
}

// NewDataplaneTokens returns dataplane tokens backed by st.
func NewDataplaneTokens(st store.Store) *DataplaneTokens {
	return &DataplaneTokens{st: st, keys: newDataplaneKeyCache(), now: time.Now}
}

// IssueDataplaneToken signs a token for id, valid for validFor, with the
// mesh's newest signing key (the highest serial); its kid header names
// that serial.
func (d *DataplaneTokens) IssueDataplaneToken(ctx context.Context, id DataplaneIdentity, validFor time.Duration) (string, error) {
	if id.Mesh == "" {
		return "", errors.New("issuing a dataplane token: the mesh cannot be empty")
	}
	if validFor <= 0 {
		return "", errors.New("issuing a dataplane token: validFor must be positive")
	}
	secrets, err := d.keys.load(ctx, d.st, id.Mesh)
	if err != nil {
		return "", err
	}
	serial, key, ok := secrets.newest()
	if !ok {
		return "", fmt.Errorf("mesh %q: %w", id.Mesh, ErrNoDataplaneSigningKey)
	}
	now := d.now()
	claims := &DataplaneClaims{
		Name: id.Name,
		Mesh: id.Mesh,
		Tags: cloneDataplaneTags(id.Tags),
		Type: id.Type,
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        rand.Text(),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-dataplaneClockSkew)),
			ExpiresAt: jwt.NewNumericDate(now.Add(validFor)),
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = strconv.Itoa(serial)
	signed, err := tok.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("signing the dataplane token: %w", err)
	}
	return signed, nil
}

func cloneDataplaneTags(tags map[string][]string) map[string][]string {
	if len(tags) == 0 {
		return nil
	}
	out := make(map[string][]string, len(tags))
	for k, v := range tags {
		out[k] = slices.Clone(v)
	}
	return out
}

// ValidateDataplaneToken checks a token presented in mesh: issued for that
// mesh, signed by the mesh's key its kid names (so tokens signed by an
// older key keep working until that key's Secret is deleted), not expired,
// not revoked. It returns the claims. Refusals wrap
// ErrInvalidDataplaneToken and a reason; other errors are the store's.
func (d *DataplaneTokens) ValidateDataplaneToken(ctx context.Context, token, mesh string) (*DataplaneClaims, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, refuseDataplaneToken(ErrDataplaneTokenMissing, "")
	}
	// The mesh claim is read before the signature is checked only to name
	// the reason better: a token of another mesh would fail the signature.
	var peek DataplaneClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &peek); err != nil {
		return nil, refuseDataplaneToken(ErrDataplaneTokenMalformed, "%v", err)
	}
	if peek.Mesh != mesh {
		return nil, refuseDataplaneToken(ErrDataplaneTokenMeshMismatch, "the token is for mesh %q, the proxy is in mesh %q", peek.Mesh, mesh)
	}
	secrets, err := d.keys.load(ctx, d.st, mesh)
	if err != nil {
		return nil, err
	}
	claims, err := parseDataplaneToken(token, mesh, secrets.keys, d.now())
	if err != nil {
		return nil, err
	}
	if secrets.revoked[claims.ID] {
		return nil, refuseDataplaneToken(ErrDataplaneTokenRevoked, "token ID %s is listed in Secret %s/%s", claims.ID, mesh, DataplaneRevocationsName(mesh))
	}
	return claims, nil
}

// parseDataplaneToken verifies a token's signature with the key of its
// kid among keys and checks its times and its mesh claim. It reads
// untrusted input: it must refuse, never panic.
func parseDataplaneToken(token, mesh string, keys map[int]*rsa.PrivateKey, now time.Time) (*DataplaneClaims, error) {
	claims := &DataplaneClaims{}
	var keyErr error
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	_, err := parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		serial, err := strconv.Atoi(kid)
		if err != nil || serial <= 0 {
			keyErr = refuseDataplaneToken(ErrDataplaneTokenMalformed, "no valid kid header (signing key serial): %q", kid)
			return nil, keyErr
		}
		key, ok := keys[serial]
		if !ok {
			keyErr = refuseDataplaneToken(ErrDataplaneTokenUnknownKey, "Secret %s does not exist (rotated out?)", DataplaneSigningKeyName(mesh, serial))
			return nil, keyErr
		}
		return &key.PublicKey, nil
	})
	switch {
	case err == nil:
	case keyErr != nil:
		return nil, keyErr
	case errors.Is(err, jwt.ErrTokenExpired):
		exp := "?"
		if claims.ExpiresAt != nil {
			exp = claims.ExpiresAt.UTC().Format(time.RFC3339)
		}
		return nil, refuseDataplaneToken(ErrDataplaneTokenExpired, "expired at %s", exp)
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return nil, refuseDataplaneToken(ErrDataplaneTokenExpired, "not valid yet (check the clocks)")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, refuseDataplaneToken(ErrDataplaneTokenSignature, "")
	default:
		return nil, refuseDataplaneToken(ErrDataplaneTokenMalformed, "%v", err)
	}
	if claims.Mesh != mesh {
		return nil, refuseDataplaneToken(ErrDataplaneTokenMeshMismatch, "the token is for mesh %q, the proxy is in mesh %q", claims.Mesh, mesh)
	}
	return claims, nil
}

// AuthenticateDataplane validates a token presented with dp (in dp's mesh)
// and checks that its claims match the Dataplane: its name when the token
// names one, and every tag of the token. As in Kuma, the Dataplane must
// carry each of the token's tags, and every value it has for that tag (on
// any inbound, or its gateway) must be one the token allows: a token for
// kuma.io/service=backend cannot register payments, nor backend and
// payments together.
func (d *DataplaneTokens) AuthenticateDataplane(ctx context.Context, token, dpMesh, dpName string, dp *mesh.Dataplane) (*DataplaneClaims, error) {
	claims, err := d.ValidateDataplaneToken(ctx, token, dpMesh)
	if err != nil {
		return nil, err
	}
	if err := MatchDataplaneClaims(claims, dpName, dp); err != nil {
		return nil, err
	}
	return claims, nil
}

// MatchDataplaneClaims checks a token's name and tags against a Dataplane
// (see AuthenticateDataplane).
func MatchDataplaneClaims(claims *DataplaneClaims, dpName string, dp *mesh.Dataplane) error {
	if claims.Name != "" && claims.Name != dpName {
		return refuseDataplaneToken(ErrDataplaneTokenNameMismatch, "the token is for Dataplane %q, the proxy presents %q", claims.Name, dpName)
	}
	have := dataplaneTagValues(dp)
	for _, tag := range slices.Sorted(maps.Keys(claims.Tags)) {
		allowed := claims.Tags[tag]
		values, ok := have[tag]
		if !ok {
			return refuseDataplaneToken(ErrDataplaneTokenTagMismatch, "the Dataplane has no tag %q, which the token requires (%s=%s)", tag, tag, strings.Join(allowed, ","))
		}
		for _, v := range slices.Sorted(maps.Keys(values)) {
			if !slices.Contains(allowed, v) {
				return refuseDataplaneToken(ErrDataplaneTokenTagMismatch, "the Dataplane has %s=%s, the token allows only %s=%s", tag, v, tag, strings.Join(allowed, ","))
			}
		}
	}
	return nil
}

// dataplaneTagValues collects every tag value of a Dataplane's inbounds
// and gateway.
func dataplaneTagValues(dp *mesh.Dataplane) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	add := func(tags map[string]string) {
		for k, v := range tags {
			if out[k] == nil {
				out[k] = map[string]bool{}
			}
			out[k][v] = true
		}
	}
	if dp == nil || dp.Networking == nil {
		return out
	}
	if dp.Networking.Gateway != nil {
		add(dp.Networking.Gateway.Tags)
	}
	for _, in := range dp.Networking.Inbound {
		add(in.Tags)
	}
	return out
}
