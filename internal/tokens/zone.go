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

// ZoneSigningKeyPrefix starts the GlobalSecrets holding the signing keys of
// zone tokens, followed by the key's serial ("zone-token-signing-key-1").
// They stay on the global control plane (KDS never sends them); their
// public parts (ZonePublicKeyPrefix) travel to zones.
const ZoneSigningKeyPrefix = "zone-token-signing-key-"

// ZoneScopeCP is the scope of a token a zone control plane presents, as
// Kuma names it.
const ZoneScopeCP = "cp"

// ErrInvalidZoneToken is wrapped by every refusal of a zone token.
var ErrInvalidZoneToken = errors.New("invalid zone token")

// ZoneClaims are the claims of a zone token (Kuma's names).
type ZoneClaims struct {
	Zone  string   `json:"Zone"`
	Scope []string `json:"Scope"`
	jwt.RegisteredClaims
}

// ZoneTokens issues and validates zone tokens with signing keys kept as
// GlobalSecrets in st (the global control plane's store).
type ZoneTokens struct {
	st store.Store
	// now is the clock; tests move it.
	now func() time.Time
}

// NewZoneTokens returns zone tokens backed by st.
func NewZoneTokens(st store.Store) *ZoneTokens { return &ZoneTokens{st: st, now: time.Now} }

// SetClock replaces the clock (tests).
func (z *ZoneTokens) SetClock(now func() time.Time) { z.now = now }

// ZoneSigningKeyName is the GlobalSecret of signing key serial.
func ZoneSigningKeyName(serial int) string { return ZoneSigningKeyPrefix + strconv.Itoa(serial) }

// EnsureZoneSigningKey creates signing key 1 unless one exists, and the
// public key (ZonePublicKeyName) of every signing key.
func (z *ZoneTokens) EnsureZoneSigningKey(ctx context.Context) error {
	serials, err := z.serials(ctx)
	if err != nil {
		return err
	}
	if len(serials) > 0 {
		return z.ensureZonePublicKeys(ctx)
	}
	key, err := rsa.GenerateKey(rand.Reader, userSigningKeyBits)
	if err != nil {
		return fmt.Errorf("generating a zone-token signing key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	spec, _ := json.Marshal(map[string]string{"data": base64.StdEncoding.EncodeToString(keyPEM)})
	err = z.st.Create(ctx, &store.Record{Kind: kinds.GlobalSecret, Name: ZoneSigningKeyName(1), Spec: spec})
	if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		return fmt.Errorf("storing the zone-token signing key: %w", err)
	}
	return z.ensureZonePublicKeys(ctx)
}

func (z *ZoneTokens) serials(ctx context.Context) ([]int, error) {
	page, err := z.st.List(ctx, store.Query{Kind: kinds.GlobalSecret, NameContains: ZoneSigningKeyPrefix})
	if err != nil {
		return nil, fmt.Errorf("listing zone-token signing keys: %w", err)
	}
	var out []int
	for _, rec := range page.Items {
		rest, ok := strings.CutPrefix(rec.Name, ZoneSigningKeyPrefix)
		if n, err := strconv.Atoi(rest); ok && err == nil && n > 0 && strconv.Itoa(n) == rest {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (z *ZoneTokens) key(ctx context.Context, serial int) (*rsa.PrivateKey, error) {
	rec, err := z.st.Get(ctx, store.Key{Kind: kinds.GlobalSecret, Name: ZoneSigningKeyName(serial)})
	if err != nil {
		return nil, err
	}
	data, err := userSecretData(rec)
	if err != nil {
		return nil, err
	}
	key, err := parseUserSigningKey(data)
	if err != nil {
		return nil, fmt.Errorf("GlobalSecret %s: %w", rec.Name, err)
	}
	return key, nil
}

// IssueZoneToken signs a token for zone with scope "cp" (what a zone
// control plane presents on KDS), valid for validFor.
func (z *ZoneTokens) IssueZoneToken(ctx context.Context, zone string, validFor time.Duration) (string, error) {
	return z.IssueZoneTokenScoped(ctx, zone, []string{ZoneScopeCP}, validFor)
}

// ValidateZoneToken checks the token's signature, expiry and scope, and
// that it was issued for zone. Refusals wrap ErrInvalidZoneToken.
func (z *ZoneTokens) ValidateZoneToken(ctx context.Context, token, zone string) error {
	var storeErr error
	claims := &ZoneClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		serial, err := strconv.Atoi(kid)
		if err != nil || serial <= 0 {
			return nil, fmt.Errorf("the token has no valid kid header (signing key serial): %q", kid)
		}
		key, err := z.key(ctx, serial)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("signing key %s does not exist (it was rotated out)", ZoneSigningKeyName(serial))
		}
		if err != nil {
			storeErr = err
			return nil, err
		}
		return &key.PublicKey, nil
	}, jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}), jwt.WithExpirationRequired(), jwt.WithTimeFunc(z.now))
	if storeErr != nil {
		return fmt.Errorf("validating a zone token: %w", storeErr)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidZoneToken, err)
	}
	if !slices.Contains(claims.Scope, ZoneScopeCP) {
		return fmt.Errorf("%w: the token's scope %v lacks %q", ErrInvalidZoneToken, claims.Scope, ZoneScopeCP)
	}
	if claims.Zone != zone {
		return fmt.Errorf("%w: the token is for zone %q, not %q", ErrInvalidZoneToken, claims.Zone, zone)
	}
	return nil
}
