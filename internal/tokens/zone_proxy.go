package tokens

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Scopes of zone tokens besides ZoneScopeCP (Kuma's names): a token with
// scope "ingress" authenticates zone ingresses, "egress" zone egresses.
const (
	ZoneScopeIngress = "ingress"
	ZoneScopeEgress  = "egress"
)

// ZoneFullScope is a token's scope when the request names none (Kuma's
// default: every scope).
var ZoneFullScope = []string{ZoneScopeCP, ZoneScopeIngress, ZoneScopeEgress}

// ValidZoneScope reports whether s is a scope a zone token may carry.
func ValidZoneScope(s string) bool { return slices.Contains(ZoneFullScope, s) }

// ZonePublicKeyPrefix starts the GlobalSecrets holding the PUBLIC part of
// the zone-token signing keys ("zone-token-signing-public-key-1"). The
// global control plane writes them next to the private keys; unlike those,
// KDS sends them to zones, whose DP servers verify zone proxies' tokens
// with them.
const ZonePublicKeyPrefix = "zone-token-signing-public-key-"

// ErrNoZoneKeys is returned (not wrapping ErrInvalidZoneToken) when this
// control plane holds no zone-token key at all, private or public: a zone
// that has not yet received the public keys from the global. The proxy
// should retry.
var ErrNoZoneKeys = errors.New("this control plane holds no zone-token signing key or public key yet (a zone receives the public keys from the global once KDS syncs)")

// ZonePublicKeyName is the GlobalSecret of the public part of key serial.
func ZonePublicKeyName(serial int) string { return ZonePublicKeyPrefix + strconv.Itoa(serial) }

// ensureZonePublicKeys writes the public key of every signing key that
// lacks one (a control plane that created its keys before public keys
// existed gets them at its next start).
func (z *ZoneTokens) ensureZonePublicKeys(ctx context.Context) error {
	serials, err := z.serials(ctx)
	if err != nil {
		return err
	}
	for _, serial := range serials {
		_, err := z.st.Get(ctx, store.Key{Kind: kinds.GlobalSecret, Name: ZonePublicKeyName(serial)})
		if err == nil {
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("reading %s: %w", ZonePublicKeyName(serial), err)
		}
		key, err := z.key(ctx, serial)
		if err != nil {
			return err
		}
		der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return fmt.Errorf("encoding the public part of %s: %w", ZoneSigningKeyName(serial), err)
		}
		pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		spec, _ := json.Marshal(map[string]string{"data": base64.StdEncoding.EncodeToString(pubPEM)})
		err = z.st.Create(ctx, &store.Record{Kind: kinds.GlobalSecret, Name: ZonePublicKeyName(serial), Spec: spec})
		if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return fmt.Errorf("storing %s: %w", ZonePublicKeyName(serial), err)
		}
	}
	return nil
}

// verificationKey returns the public key of signing key serial: from the
// private key when this control plane holds it (global, standalone), else
// from the public key synced from the global (zone).
func (z *ZoneTokens) verificationKey(ctx context.Context, serial int) (*rsa.PublicKey, error) {
	key, err := z.key(ctx, serial)
	if err == nil {
		return &key.PublicKey, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	rec, err := z.st.Get(ctx, store.Key{Kind: kinds.GlobalSecret, Name: ZonePublicKeyName(serial)})
	if err != nil {
		return nil, err
	}
	data, err := userSecretData(rec)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("GlobalSecret %s: the public key is not PEM", rec.Name)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("GlobalSecret %s: %w", rec.Name, err)
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("GlobalSecret %s: not an RSA public key", rec.Name)
	}
	return rsaPub, nil
}

// IssueZoneTokenScoped signs a token for zone with the given scopes
// (ZoneFullScope when empty), valid for validFor, with the newest signing
// key (its serial in the kid header).
func (z *ZoneTokens) IssueZoneTokenScoped(ctx context.Context, zone string, scope []string, validFor time.Duration) (string, error) {
	if zone == "" {
		return "", errors.New("issuing a zone token: the zone cannot be empty")
	}
	if validFor <= 0 {
		return "", errors.New("issuing a zone token: validFor must be positive")
	}
	if len(scope) == 0 {
		scope = ZoneFullScope
	}
	for _, s := range scope {
		if !ValidZoneScope(s) {
			return "", fmt.Errorf("issuing a zone token: scope %q is not one of %v", s, ZoneFullScope)
		}
	}
	serials, err := z.serials(ctx)
	if err != nil {
		return "", err
	}
	if len(serials) == 0 {
		return "", fmt.Errorf("there is no zone-token signing key (GlobalSecret %s1): the global (or standalone) control plane creates it at start", ZoneSigningKeyPrefix)
	}
	serial := serials[len(serials)-1]
	key, err := z.key(ctx, serial)
	if err != nil {
		return "", err
	}
	now := z.now()
	claims := &ZoneClaims{Zone: zone, Scope: slices.Clone(scope), RegisteredClaims: jwt.RegisteredClaims{
		ID:        rand.Text(),
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
		ExpiresAt: jwt.NewNumericDate(now.Add(validFor)),
	}}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = strconv.Itoa(serial)
	return tok.SignedString(key)
}

// ValidateZoneProxyToken checks the token a zone proxy presents: its
// signature (a local signing key or a public key synced from the global),
// expiry, that its scope holds scope ("ingress" or "egress"), and, unless
// zone is empty (a standalone control plane), that it was issued for zone.
// Refusals wrap ErrInvalidZoneToken; a store failure does not.
func (z *ZoneTokens) ValidateZoneProxyToken(ctx context.Context, token, zone, scope string) (*ZoneClaims, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: no token was presented (pass a zone token with --dataplane-token-file; get one with `trellisctl generate zone-token --zone <zone> --scope %s`)", ErrInvalidZoneToken, scope)
	}
	var storeErr error
	claims := &ZoneClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		serial, err := strconv.Atoi(kid)
		if err != nil || serial <= 0 {
			return nil, fmt.Errorf("the token has no valid kid header (signing key serial): %q", kid)
		}
		pub, err := z.verificationKey(ctx, serial)
		if errors.Is(err, store.ErrNotFound) {
			if none, lerr := z.noKeys(ctx); lerr != nil || none {
				storeErr = cmpErr(lerr, ErrNoZoneKeys)
				return nil, storeErr
			}
			return nil, fmt.Errorf("signing key %d is unknown here (neither %s nor %s exists)", serial, ZoneSigningKeyName(serial), ZonePublicKeyName(serial))
		}
		if err != nil {
			storeErr = err
			return nil, err
		}
		return pub, nil
	}, jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithExpirationRequired(), jwt.WithTimeFunc(z.now))
	if storeErr != nil {
		return nil, fmt.Errorf("validating a zone token: %w", storeErr)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidZoneToken, err)
	}
	if !slices.Contains(claims.Scope, scope) {
		return nil, fmt.Errorf("%w: the token's scope %v lacks %q", ErrInvalidZoneToken, claims.Scope, scope)
	}
	if zone != "" && claims.Zone != zone {
		return nil, fmt.Errorf("%w: the token is for zone %q, not this control plane's zone %q", ErrInvalidZoneToken, claims.Zone, zone)
	}
	return claims, nil
}

// noKeys reports whether the store holds no zone-token key, private or
// public.
func (z *ZoneTokens) noKeys(ctx context.Context) (bool, error) {
	page, err := z.st.List(ctx, store.Query{Kind: kinds.GlobalSecret, NameContains: "zone-token-signing-"})
	if err != nil {
		return false, fmt.Errorf("listing zone-token keys: %w", err)
	}
	for _, rec := range page.Items {
		if strings.HasPrefix(rec.Name, ZoneSigningKeyPrefix) || strings.HasPrefix(rec.Name, ZonePublicKeyPrefix) {
			return false, nil
		}
	}
	return true, nil
}

// cmpErr returns err, or fallback when err is nil.
func cmpErr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}
