package tokens

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/memory"
)

func newUserTokensForTest(t *testing.T) (*UserTokens, store.Store) {
	t.Helper()
	st := memory.New()
	u := NewUserTokens(st)
	if err := u.EnsureUserSigningKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	return u, st
}

func mustIssueUser(t *testing.T, u *UserTokens, name string, groups ...string) string {
	t.Helper()
	tok, err := u.IssueUserToken(context.Background(), name, groups, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func wantInvalidUser(t *testing.T, u *UserTokens, token, reason string) {
	t.Helper()
	_, err := u.ValidateUserToken(context.Background(), token)
	if !errors.Is(err, ErrInvalidUserToken) {
		t.Fatalf("err = %v, want ErrInvalidUserToken", err)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Fatalf("err = %q, want it to say %q", err, reason)
	}
}

func TestUserTokenIssueAndValidate(t *testing.T) {
	u, _ := newUserTokensForTest(t)
	tok := mustIssueUser(t, u, "john.doe@example.com", "team-a", UserAdminGroup)
	claims, err := u.ValidateUserToken(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Name != "john.doe@example.com" || !claims.InUserGroup("team-a") || !claims.InUserGroup(UserAdminGroup) || claims.InUserGroup("other") {
		t.Fatalf("claims = %+v", claims)
	}
	if claims.ID == "" || claims.ExpiresAt == nil || time.Until(claims.ExpiresAt.Time) > time.Hour || time.Until(claims.ExpiresAt.Time) < 59*time.Minute {
		t.Fatalf("jti/exp = %q/%v", claims.ID, claims.ExpiresAt)
	}
	// The payload uses Kuma's claim names and the header names the key.
	parts := strings.Split(tok, ".")
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var h, p map[string]any
	_ = json.Unmarshal(header, &h)
	_ = json.Unmarshal(payload, &p)
	if h["alg"] != "RS256" || h["kid"] != "1" {
		t.Fatalf("header = %v", h)
	}
	for _, k := range []string{"Name", "Groups", "jti", "exp", "iat"} {
		if _, ok := p[k]; !ok {
			t.Errorf("payload lacks %s: %v", k, p)
		}
	}
	// Two tokens never share an ID.
	other, _ := u.ValidateUserToken(context.Background(), mustIssueUser(t, u, "john.doe@example.com"))
	if other.ID == claims.ID {
		t.Fatal("two tokens got the same jti")
	}
}

func TestUserTokenIssueNeedsNameAndValidity(t *testing.T) {
	u, _ := newUserTokensForTest(t)
	if _, err := u.IssueUserToken(context.Background(), "", nil, time.Hour); err == nil {
		t.Fatal("a token without a name was issued")
	}
	if _, err := u.IssueUserToken(context.Background(), "x", nil, 0); err == nil {
		t.Fatal("a token without expiry was issued")
	}
	if _, err := NewUserTokens(memory.New()).IssueUserToken(context.Background(), "x", nil, time.Hour); err == nil ||
		!strings.Contains(err.Error(), "no user-token signing key") {
		t.Fatalf("issuing without a signing key: %v", err)
	}
}

func TestUserTokenRejected(t *testing.T) {
	u, _ := newUserTokensForTest(t)
	tok := mustIssueUser(t, u, "jane")

	t.Run("expired", func(t *testing.T) {
		later := *u
		later.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		wantInvalidUser(t, &later, tok, "expired")
	})
	t.Run("tampered payload", func(t *testing.T) {
		parts := strings.Split(tok, ".")
		forged, _ := json.Marshal(map[string]any{"Name": "jane", "Groups": []string{UserAdminGroup}, "jti": "x", "exp": time.Now().Add(time.Hour).Unix()})
		parts[1] = base64.RawURLEncoding.EncodeToString(forged)
		wantInvalidUser(t, u, strings.Join(parts, "."), "signature is invalid")
	})
	t.Run("signed by another control plane", func(t *testing.T) {
		foreign, _ := newUserTokensForTest(t)
		wantInvalidUser(t, u, mustIssueUser(t, foreign, "jane"), "signature is invalid")
	})
	t.Run("HMAC or none instead of RS256", func(t *testing.T) {
		claims := jwt.MapClaims{"Name": "jane", "jti": "x", "exp": time.Now().Add(time.Hour).Unix()}
		hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		hs.Header["kid"] = "1"
		s, _ := hs.SignedString([]byte("secret"))
		wantInvalidUser(t, u, s, "signing method HS256 is invalid")
		none := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
		none.Header["kid"] = "1"
		s, _ = none.SignedString(jwt.UnsafeAllowNoneSignatureType)
		wantInvalidUser(t, u, s, "signing method none is invalid")
	})
	t.Run("no kid", func(t *testing.T) {
		key, _ := u.userSigningKey(context.Background(), 1)
		s, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"Name": "jane", "jti": "x", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(key)
		wantInvalidUser(t, u, s, "no valid kid")
	})
	t.Run("no expiry", func(t *testing.T) {
		key, _ := u.userSigningKey(context.Background(), 1)
		j := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"Name": "jane", "jti": "x"})
		j.Header["kid"] = "1"
		s, _ := j.SignedString(key)
		wantInvalidUser(t, u, s, "exp claim is required")
	})
	t.Run("garbage", func(t *testing.T) {
		wantInvalidUser(t, u, "not-a-jwt", "malformed")
		wantInvalidUser(t, u, "", "malformed")
	})
}

func TestUserTokenRotation(t *testing.T) {
	ctx := context.Background()
	u, st := newUserTokensForTest(t)
	old := mustIssueUser(t, u, "jane")
	// Serials are compared as numbers: 10 is newer than 9.
	for want := 2; want <= 10; want++ {
		serial, err := u.RotateUserSigningKey(ctx)
		if err != nil || serial != want {
			t.Fatalf("rotate = %d, %v; want %d", serial, err, want)
		}
	}
	fresh := mustIssueUser(t, u, "jane")
	if kid := userKid(t, fresh); kid != "10" {
		t.Fatalf("new tokens are signed by key %s, want 10", kid)
	}
	for _, tok := range []string{old, fresh} {
		if _, err := u.ValidateUserToken(ctx, tok); err != nil {
			t.Fatalf("before deleting key 1: %v", err)
		}
	}
	// EnsureUserSigningKey leaves the rotated keys alone.
	if err := u.EnsureUserSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, store.Key{Kind: kinds.GlobalSecret, Name: UserSigningKeyName(1)}); err != nil {
		t.Fatal(err)
	}
	wantInvalidUser(t, u, old, "user-token-signing-key-1 does not exist")
	if _, err := u.ValidateUserToken(ctx, fresh); err != nil {
		t.Fatalf("a token of the newest key after deleting key 1: %v", err)
	}
}

func userKid(t *testing.T, tok string) string {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &UserClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := parsed.Header["kid"].(string)
	return kid
}

func TestUserTokenRevocation(t *testing.T) {
	ctx := context.Background()
	u, st := newUserTokensForTest(t)
	a, b, c := mustIssueUser(t, u, "a"), mustIssueUser(t, u, "b"), mustIssueUser(t, u, "c")
	ca, _ := u.ValidateUserToken(ctx, a)
	if err := u.RevokeUserToken(ctx, ca.ID); err != nil {
		t.Fatal(err)
	}
	if err := u.RevokeUserToken(ctx, ca.ID); err != nil { // twice is fine
		t.Fatal(err)
	}
	wantInvalidUser(t, u, a, "revoked")
	if _, err := u.ValidateUserToken(ctx, b); err != nil {
		t.Fatalf("token b after revoking a: %v", err)
	}
	// An operator edits the list by hand, one ID a line.
	cb, _ := u.ValidateUserToken(ctx, b)
	cc, _ := u.ValidateUserToken(ctx, c)
	rec, err := st.Get(ctx, store.Key{Kind: kinds.GlobalSecret, Name: UserRevocationsName})
	if err != nil {
		t.Fatal(err)
	}
	rec.Spec, _ = json.Marshal(map[string]string{"data": base64.StdEncoding.EncodeToString([]byte(ca.ID + "\n" + cb.ID + "\n"))})
	if err := st.Update(ctx, rec); err != nil {
		t.Fatal(err)
	}
	wantInvalidUser(t, u, b, "revoked")
	if _, err := u.ValidateUserToken(ctx, c); err != nil {
		t.Fatalf("token c: %v", err)
	}
	if err := u.RevokeUserToken(ctx, cc.ID); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{a, b, c} {
		wantInvalidUser(t, u, tok, "revoked")
	}
	if err := u.RevokeUserToken(ctx, "a,b"); err == nil {
		t.Fatal("an ID with a comma was accepted")
	}
}

func TestUserSigningKeyConvergesAcrossInstances(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	instances := make([]*UserTokens, 4)
	var wg sync.WaitGroup
	errs := make([]error, len(instances))
	for i := range instances {
		instances[i] = NewUserTokens(st)
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = instances[i].EnsureUserSigningKey(ctx) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	serials, err := instances[0].userSigningSerials(ctx)
	if err != nil || len(serials) != 1 || serials[0] != 1 {
		t.Fatalf("serials = %v, %v; want [1]", serials, err)
	}
	tok := mustIssueUser(t, instances[1], "jane")
	if _, err := instances[3].ValidateUserToken(ctx, tok); err != nil {
		t.Fatalf("a token of instance 1 at instance 3: %v", err)
	}
}

// failingGets is a store whose reads fail, as when the database is down.
type failingGets struct{ store.Store }

var errUserStoreDown = errors.New("store down")

func (failingGets) Get(context.Context, store.Key) (*store.Record, error) {
	return nil, errUserStoreDown
}

func TestUserTokenStoreErrorIsNotInvalidToken(t *testing.T) {
	u, st := newUserTokensForTest(t)
	tok := mustIssueUser(t, u, "jane")
	down := NewUserTokens(failingGets{st})
	_, err := down.ValidateUserToken(context.Background(), tok)
	if !errors.Is(err, errUserStoreDown) || errors.Is(err, ErrInvalidUserToken) {
		t.Fatalf("err = %v, want the store's error and not ErrInvalidUserToken", err)
	}
}

func TestAdminUserTokenFile(t *testing.T) {
	ctx := context.Background()
	u, st := newUserTokensForTest(t)
	path := filepath.Join(t.TempDir(), "data", AdminUserTokenFileName)
	created, err := u.EnsureAdminUserTokenFile(ctx, path)
	if err != nil || !created {
		t.Fatalf("first start: created=%v err=%v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, mode %v; want 0600", err, fi.Mode())
	}
	first, _ := os.ReadFile(path)
	claims, err := u.ValidateUserToken(ctx, strings.TrimSpace(string(first)))
	if err != nil || claims.Name != UserAdminName || !claims.InUserGroup(UserAdminGroup) {
		t.Fatalf("admin token: %+v, %v", claims, err)
	}
	if created, err := u.EnsureAdminUserTokenFile(ctx, path); err != nil || created {
		t.Fatalf("second start: created=%v err=%v; want the file kept", created, err)
	}
	// The store was replaced (new signing key): the stale token is rewritten.
	if err := st.Delete(ctx, store.Key{Kind: kinds.GlobalSecret, Name: UserSigningKeyName(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := u.RotateUserSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	if created, err := u.EnsureAdminUserTokenFile(ctx, path); err != nil || !created {
		t.Fatalf("after the key changed: created=%v err=%v; want a new token", created, err)
	}
	second, _ := os.ReadFile(path)
	if string(second) == string(first) {
		t.Fatal("the token file was not rewritten")
	}
	if _, err := u.ValidateUserToken(ctx, strings.TrimSpace(string(second))); err != nil {
		t.Fatal(err)
	}
}
