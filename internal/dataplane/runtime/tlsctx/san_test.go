package tlsctx_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"net/url"
	"strings"
	"testing"

	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/peer"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/tlsctx"
)

var fuzzKey = func() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}()

// certWithURI returns a certificate whose only URI SAN is u.
func certWithURI(t testing.TB, u *url.URL) *x509.Certificate {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), URIs: []*url.URL{u}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, fuzzKey.Public(), fuzzKey)
	if err != nil {
		t.Skip(err) // a URI x509 refuses to encode
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Skip(err)
	}
	return c
}

func matcher(kind uint8, pattern string) *matcherv3.StringMatcher {
	if kind%2 == 0 {
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: pattern}}
	}
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: pattern}}
}

func TestSANMatcher(t *testing.T) {
	web, _ := url.Parse("spiffe://default/web")
	cert := certWithURI(t, web)
	for _, tc := range []struct {
		kind    uint8
		pattern string
		want    bool
	}{
		{0, "spiffe://default/web", true},
		{0, "spiffe://default/we", false},
		{0, "spiffe://default/web/", false},
		{1, "spiffe://default/", true},
		{1, "spiffe://default/web", true},
		{1, "spiffe://defaults/", false},
		{1, "spiffe://other/", false},
		{1, "", true},
	} {
		m, err := tlsctx.NewSANMatcher(matcher(tc.kind, tc.pattern))
		if err != nil {
			t.Fatal(err)
		}
		if got := m(cert); got != tc.want {
			t.Errorf("kind %d %q: %v, want %v", tc.kind, tc.pattern, got, tc.want)
		}
	}
}

// FuzzSANMatch: a certificate with URI SAN s matches exact p iff s == p
// and prefix p iff s starts with p, where s is the SAN as encoded in the
// certificate (read back by peer.URISANs).
func FuzzSANMatch(f *testing.F) {
	f.Add("spiffe://default/web", "spiffe://default/", uint8(1))
	f.Add("spiffe://default/web", "spiffe://default/web", uint8(0))
	f.Add("spiffe://default/we%20b", "spiffe://default/we b", uint8(0))
	f.Fuzz(func(t *testing.T, san, pattern string, kind uint8) {
		u, err := url.Parse(san)
		if err != nil {
			return
		}
		cert := certWithURI(t, u)
		encoded := peer.URISANs(cert)
		if len(encoded) != 1 || encoded[0] != u.String() {
			t.Fatalf("URISANs = %q, want [%q]", encoded, u.String())
		}
		m, err := tlsctx.NewSANMatcher(matcher(kind, pattern))
		if err != nil {
			t.Fatal(err)
		}
		want := encoded[0] == pattern
		if kind%2 == 1 {
			want = strings.HasPrefix(encoded[0], pattern)
		}
		if got := m(cert); got != want {
			t.Fatalf("SAN %q, kind %d, pattern %q: %v, want %v", encoded[0], kind%2, pattern, got, want)
		}
	})
}
