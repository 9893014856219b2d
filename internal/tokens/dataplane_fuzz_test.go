package tokens

import (
	"crypto/rsa"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzParseDataplaneToken feeds arbitrary strings to the token parser the
// DP server runs on what proxies send: it must refuse or accept, never
// panic, and whatever it accepts must be a token of the expected mesh that
// has not expired.
func FuzzParseDataplaneToken(f *testing.F) {
	key := dpTestKey(f, 1)
	now := time.Now()
	claims := &DataplaneClaims{Name: "backend-1", Mesh: "default", Tags: map[string][]string{"kuma.io/service": {"backend"}},
		RegisteredClaims: jwt.RegisteredClaims{ID: "id", ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = "1"
	good, err := tok.SignedString(key)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{good, "", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", good[:len(good)-3], good + "x",
		"eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJNZXNoIjoiZGVmYXVsdCIsIlRhZ3MiOnsieCI6W119fQ.AAAA"} {
		f.Add(seed)
	}
	keys := map[int]*rsa.PrivateKey{1: key}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := parseDataplaneToken(raw, "default", keys, now)
		if err != nil {
			return
		}
		if c.Mesh != "default" || c.ExpiresAt == nil || !c.ExpiresAt.After(now) {
			t.Fatalf("accepted %q with claims %+v", raw, c)
		}
	})
}
