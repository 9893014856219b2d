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
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/memory"
)

// dpTestKeys holds RSA keys generated once for the package's dataplane tests.
var dpTestKeys = map[int]*rsa.PrivateKey{}

func dpTestKey(t testing.TB, n int) *rsa.PrivateKey {
	t.Helper()
	if k, ok := dpTestKeys[n]; ok {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	dpTestKeys[n] = k
	return k
}

// putDPSecret writes a mesh Secret the way the API stores it.
func putDPSecret(t *testing.T, st store.Store, meshName, name string, data []byte) {
	t.Helper()
	spec, _ := json.Marshal(map[string]string{"data": base64.StdEncoding.EncodeToString(data)})
	ctx := context.Background()
	key := store.Key{Kind: kinds.Secret, Mesh: meshName, Name: name}
	if old, err := st.Get(ctx, key); err == nil {
		old.Spec = spec
		if err := st.Update(ctx, old); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := st.Create(ctx, &store.Record{Kind: kinds.Secret, Mesh: meshName, Name: name, Spec: spec}); err != nil {
		t.Fatal(err)
	}
}

// putDPSigningKey stores key number n (a test key) as serial of meshName,
// PEM PKCS #1 as meshdefaults writes it.
func putDPSigningKey(t *testing.T, st store.Store, meshName string, serial, n int) {
	t.Helper()
	k := dpTestKey(t, n)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	putDPSecret(t, st, meshName, DataplaneSigningKeyName(meshName, serial), pemBytes)
}

func newDPTokensForTest(t *testing.T) (*DataplaneTokens, store.Store) {
	t.Helper()
	st := memory.New()
	for _, m := range []string{"default", "other"} {
		if err := st.Create(context.Background(), &store.Record{Kind: kinds.Mesh, Name: m, Spec: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	putDPSigningKey(t, st, "default", 1, 1)
	putDPSigningKey(t, st, "other", 1, 2)
	return NewDataplaneTokens(st), st
}

func issueDP(t *testing.T, d *DataplaneTokens, id DataplaneIdentity, validFor time.Duration) string {
	t.Helper()
	tok, err := d.IssueDataplaneToken(context.Background(), id, validFor)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// dpSpec decodes a Dataplane manifest through the registry, as the DP
// server does.
func dpSpec(t *testing.T, doc string) (string, string, *mesh.Dataplane) {
	t.Helper()
	res, err := kinds.Registry().Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return res.Meta.Mesh, res.Meta.Name, res.Spec.(*mesh.Dataplane)
}

const dpBackend1 = `type: Dataplane
mesh: default
name: backend-1
networking:
  address: 127.0.0.1
  inbound:
  - port: 8080
    tags: {kuma.io/service: backend, kuma.io/protocol: http, version: v1}
`

func wantRefused(t *testing.T, err, reason error, says string) {
	t.Helper()
	if !errors.Is(err, ErrInvalidDataplaneToken) || !errors.Is(err, reason) {
		t.Fatalf("err = %v, want %v wrapped with ErrInvalidDataplaneToken", err, reason)
	}
	if !strings.Contains(err.Error(), says) {
		t.Fatalf("err = %q, want it to say %q", err, says)
	}
}

func authDP(d *DataplaneTokens, tok, doc string, t *testing.T) error {
	m, n, dp := dpSpec(t, doc)
	_, err := d.AuthenticateDataplane(context.Background(), tok, m, n, dp)
	return err
}

func TestDataplaneTokenIssueAndAuthenticate(t *testing.T) {
	d, _ := newDPTokensForTest(t)
	tok := issueDP(t, d, DataplaneIdentity{Name: "backend-1", Mesh: "default", Tags: map[string][]string{"kuma.io/service": {"backend"}}, Type: DataplaneProxyType}, 24*time.Hour)
	m, n, dp := dpSpec(t, dpBackend1)
	claims, err := d.AuthenticateDataplane(context.Background(), tok, m, n, dp)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Name != "backend-1" || claims.Mesh != "default" || claims.ID == "" || claims.Type != "dataplane" {
		t.Fatalf("claims = %+v", claims)
	}
	if got := claims.ExpiresAt.Sub(claims.IssuedAt.Time); got != 24*time.Hour {
		t.Fatalf("valid for %s, want 24h", got)
	}
	// The header names the key serial; claim names are Kuma's.
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header["kid"] != "1" || parsed.Header["alg"] != "RS256" {
		t.Fatalf("header = %v", parsed.Header)
	}
	mc := parsed.Claims.(jwt.MapClaims)
	for _, k := range []string{"Name", "Mesh", "Tags", "jti", "iat", "exp"} {
		if _, ok := mc[k]; !ok {
			t.Errorf("claim %s missing from %v", k, mc)
		}
	}
	// A mesh-wide token (no name, no tags) fits any Dataplane of the mesh.
	meshTok := issueDP(t, d, DataplaneIdentity{Mesh: "default"}, time.Hour)
	if err := authDP(d, meshTok, dpBackend1, t); err != nil {
		t.Fatal(err)
	}
}

func TestDataplaneTokenClaimsMustMatch(t *testing.T) {
	d, _ := newDPTokensForTest(t)
	backend := issueDP(t, d, DataplaneIdentity{Mesh: "default", Tags: map[string][]string{"kuma.io/service": {"backend"}}}, time.Hour)
	payments := strings.ReplaceAll(dpBackend1, "kuma.io/service: backend", "kuma.io/service: payments")
	wantRefused(t, authDP(d, backend, payments, t), ErrDataplaneTokenTagMismatch, "kuma.io/service=payments")

	both := dpBackend1 + "  - port: 8081\n    tags: {kuma.io/service: payments}\n"
	wantRefused(t, authDP(d, backend, both, t), ErrDataplaneTokenTagMismatch, "kuma.io/service=payments")
	twoServices := issueDP(t, d, DataplaneIdentity{Mesh: "default", Tags: map[string][]string{"kuma.io/service": {"backend", "payments"}}}, time.Hour)
	if err := authDP(d, twoServices, both, t); err != nil {
		t.Fatalf("a token for both services: %v", err)
	}

	zone := issueDP(t, d, DataplaneIdentity{Mesh: "default", Tags: map[string][]string{"kuma.io/zone": {"east"}}}, time.Hour)
	wantRefused(t, authDP(d, zone, dpBackend1, t), ErrDataplaneTokenTagMismatch, `no tag "kuma.io/zone"`)

	named := issueDP(t, d, DataplaneIdentity{Name: "backend-2", Mesh: "default"}, time.Hour)
	wantRefused(t, authDP(d, named, dpBackend1, t), ErrDataplaneTokenNameMismatch, `"backend-2"`)

	otherMesh := issueDP(t, d, DataplaneIdentity{Mesh: "other"}, time.Hour)
	wantRefused(t, authDP(d, otherMesh, dpBackend1, t), ErrDataplaneTokenMeshMismatch, `mesh "other"`)

	// Gateways carry their tags on the gateway.
	gw := "type: Dataplane\nmesh: default\nname: gw-1\nnetworking:\n  address: 127.0.0.1\n  gateway:\n    type: BUILTIN\n    tags: {kuma.io/service: edge}\n"
	edge := issueDP(t, d, DataplaneIdentity{Mesh: "default", Tags: map[string][]string{"kuma.io/service": {"edge"}}}, time.Hour)
	if err := authDP(d, edge, gw, t); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, authDP(d, backend, gw, t), ErrDataplaneTokenTagMismatch, "kuma.io/service=edge")
}

func TestDataplaneTokenExpired(t *testing.T) {
	d, _ := newDPTokensForTest(t)
	tok := issueDP(t, d, DataplaneIdentity{Mesh: "default"}, time.Hour)
	d.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	wantRefused(t, authDP(d, tok, dpBackend1, t), ErrDataplaneTokenExpired, "expired at")
	d.now = func() time.Time { return time.Now().Add(-time.Hour) }
	wantRefused(t, authDP(d, tok, dpBackend1, t), ErrDataplaneTokenExpired, "not valid yet")
	// Within the clock skew allowance it is fine.
	d.now = func() time.Time { return time.Now().Add(-time.Minute) }
	if err := authDP(d, tok, dpBackend1, t); err != nil {
		t.Fatal(err)
	}
}

func TestDataplaneTokenRevoked(t *testing.T) {
	d, st := newDPTokensForTest(t)
	tok := issueDP(t, d, DataplaneIdentity{Mesh: "default"}, time.Hour)
	keep := issueDP(t, d, DataplaneIdentity{Mesh: "default"}, time.Hour)
	claims, err := d.ValidateDataplaneToken(context.Background(), tok, "default")
	if err != nil {
		t.Fatal(err)
	}
	putDPSecret(t, st, "default", DataplaneRevocationsName("default"), []byte("some-other-id,\n"+claims.ID+"\n"))
	wantRefused(t, authDP(d, tok, dpBackend1, t), ErrDataplaneTokenRevoked, claims.ID)
	if err := authDP(d, keep, dpBackend1, t); err != nil {
		t.Fatalf("a token not in the list: %v", err)
	}
	// The revocation list of another mesh does not count.
	putDPSecret(t, st, "default", DataplaneRevocationsName("default"), []byte("x"))
	putDPSecret(t, st, "other", DataplaneRevocationsName("other"), []byte(claims.ID))
	if err := authDP(d, tok, dpBackend1, t); err != nil {
		t.Fatal(err)
	}
}

func TestDataplaneTokenRotation(t *testing.T) {
	d, st := newDPTokensForTest(t)
	old := issueDP(t, d, DataplaneIdentity{Mesh: "default"}, time.Hour)
	putDPSigningKey(t, st, "default", 2, 3)
	fresh := issueDP(t, d, DataplaneIdentity{Mesh: "default"}, time.Hour)
	parsed, _, _ := jwt.NewParser().ParseUnverified(fresh, jwt.MapClaims{})
	if parsed.Header["kid"] != "2" {
		t.Fatalf("a new token is signed with kid %v, want the newest key 2", parsed.Header["kid"])
	}
	for name, tok := range map[string]string{"old": old, "new": fresh} {
		if err := authDP(d, tok, dpBackend1, t); err != nil {
			t.Fatalf("%s token before the old key is deleted: %v", name, err)
		}
	}
	if err := st.Delete(context.Background(), store.Key{Kind: kinds.Secret, Mesh: "default", Name: DataplaneSigningKeyName("default", 1)}); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, authDP(d, old, dpBackend1, t), ErrDataplaneTokenUnknownKey, "dataplane-token-signing-key-default-1")
	if err := authDP(d, fresh, dpBackend1, t); err != nil {
		t.Fatal(err)
	}
	// Serial 10 sorts after 9 as a number.
	putDPSigningKey(t, st, "default", 10, 1)
	putDPSigningKey(t, st, "default", 9, 3)
	tok := issueDP(t, d, DataplaneIdentity{Mesh: "default"}, time.Hour)
	parsed, _, _ = jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if parsed.Header["kid"] != "10" {
		t.Fatalf("kid %v, want 10", parsed.Header["kid"])
	}
}

func TestDataplaneTokenBadInput(t *testing.T) {
	d, _ := newDPTokensForTest(t)
	good := issueDP(t, d, DataplaneIdentity{Mesh: "default"}, time.Hour)
	wantRefused(t, authDP(d, "", dpBackend1, t), ErrDataplaneTokenMissing, "no token")
	wantRefused(t, authDP(d, "not-a-jwt", dpBackend1, t), ErrDataplaneTokenMalformed, "malformed")

	// Another signature on the same header and claims.
	parts := strings.Split(good, ".")
	forged, _ := jwt.SigningMethodRS256.Sign(parts[0]+"."+parts[1], dpTestKey(t, 3))
	wantRefused(t, authDP(d, parts[0]+"."+parts[1]+"."+base64.RawURLEncoding.EncodeToString(forged), dpBackend1, t), ErrDataplaneTokenSignature, "bad signature")

	// Claims changed after signing.
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), `"Mesh":"default"`, `"Mesh":"default","Name":"x"`, 1))
	wantRefused(t, authDP(d, parts[0]+"."+base64.RawURLEncoding.EncodeToString(payload)+"."+parts[2], dpBackend1, t), ErrDataplaneTokenSignature, "")

	// HS256 with the public key as secret, and alg none, are refused.
	claims := jwt.MapClaims{"Mesh": "default", "exp": time.Now().Add(time.Hour).Unix()}
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	hs.Header["kid"] = "1"
	hsTok, _ := hs.SignedString(x509.MarshalPKCS1PublicKey(&dpTestKey(t, 1).PublicKey))
	wantRefused(t, authDP(d, hsTok, dpBackend1, t), ErrInvalidDataplaneToken, "")
	none := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
	none.Header["kid"] = "1"
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	wantRefused(t, authDP(d, noneTok, dpBackend1, t), ErrInvalidDataplaneToken, "")

	// No kid, and a kid naming no key.
	nokid := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	nokidTok, _ := nokid.SignedString(dpTestKey(t, 1))
	wantRefused(t, authDP(d, nokidTok, dpBackend1, t), ErrDataplaneTokenMalformed, "kid")
	unknown := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	unknown.Header["kid"] = "7"
	unknownTok, _ := unknown.SignedString(dpTestKey(t, 1))
	wantRefused(t, authDP(d, unknownTok, dpBackend1, t), ErrDataplaneTokenUnknownKey, "dataplane-token-signing-key-default-7")

	// No exp: refused.
	noexp := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"Mesh": "default"})
	noexp.Header["kid"] = "1"
	noexpTok, _ := noexp.SignedString(dpTestKey(t, 1))
	wantRefused(t, authDP(d, noexpTok, dpBackend1, t), ErrDataplaneTokenMalformed, "exp")
}

func TestDataplaneTokenIssueErrors(t *testing.T) {
	d, st := newDPTokensForTest(t)
	ctx := context.Background()
	if _, err := d.IssueDataplaneToken(ctx, DataplaneIdentity{Mesh: "nowhere"}, time.Hour); !errors.Is(err, ErrNoDataplaneSigningKey) {
		t.Fatalf("err = %v, want ErrNoDataplaneSigningKey", err)
	}
	if _, err := d.IssueDataplaneToken(ctx, DataplaneIdentity{Mesh: "default"}, 0); err == nil {
		t.Fatal("validFor 0 accepted")
	}
	if _, err := d.IssueDataplaneToken(ctx, DataplaneIdentity{}, time.Hour); err == nil {
		t.Fatal("no mesh accepted")
	}
	// A broken key Secret is an error naming it, not a silent skip.
	putDPSecret(t, st, "default", DataplaneSigningKeyName("default", 3), []byte("not pem"))
	_, err := d.IssueDataplaneToken(ctx, DataplaneIdentity{Mesh: "default"}, time.Hour)
	if err == nil || !strings.Contains(err.Error(), "dataplane-token-signing-key-default-3") || errors.Is(err, ErrInvalidDataplaneToken) {
		t.Fatalf("err = %v", err)
	}
}

func TestDataplaneSigningKeySerial(t *testing.T) {
	for name, want := range map[string]int{
		"dataplane-token-signing-key-default-1":   1,
		"dataplane-token-signing-key-default-12":  12,
		"dataplane-token-signing-key-default-01":  0,
		"dataplane-token-signing-key-default-":    0,
		"dataplane-token-signing-key-default-x":   0,
		"dataplane-token-signing-key-default-1-2": 0,
		"dataplane-token-signing-key-defaults-1":  0,
	} {
		got, ok := dataplaneSerial("default", name)
		if got != want || ok != (want > 0) {
			t.Errorf("%s: %d %v, want %d", name, got, ok, want)
		}
	}
	if got := parseDataplaneRevocations([]byte(" a, b\n\nc,,\r\n")); strings.Join(got, "|") != "a|b|c" {
		t.Errorf("revocations %q", got)
	}
}
