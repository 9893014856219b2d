package peer_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/peer"
)

func TestURISANsOfCertificate(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	u1, _ := url.Parse("spiffe://default/web")
	u2, _ := url.Parse("spiffe://default/web-admin")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
		DNSNames: []string{"web.mesh"}, URIs: []*url.URL{u1, u2}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	if got := peer.URISANs(cert); !slices.Equal(got, []string{"spiffe://default/web", "spiffe://default/web-admin"}) {
		t.Fatalf("URISANs = %q", got)
	}
}

func TestParseURISANsRejectsMalformed(t *testing.T) {
	for _, der := range [][]byte{nil, {0x30}, {0x30, 0x02, 0x86, 0x05}, {0x31, 0x00}, {0x30, 0x03, 0x86, 0x01, 0x80}} {
		if _, err := peer.ParseURISANs(der); err == nil {
			t.Errorf("ParseURISANs(% x) succeeded", der)
		}
	}
}

func TestPrincipal(t *testing.T) {
	var plaintext *peer.Identity
	if got := plaintext.Principal(); got != "" {
		t.Errorf("plaintext principal %q", got)
	}
	id := &peer.Identity{Authenticated: true, DNSNames: []string{"a"}, Subject: "CN=x"}
	if got := id.Principal(); got != "a" {
		t.Errorf("principal %q", got)
	}
}

// generalNames encodes URIs as a subjectAltName value.
func generalNames(uris ...string) []byte {
	var raw []asn1.RawValue
	for _, u := range uris {
		raw = append(raw, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(u)})
	}
	b, _ := asn1.Marshal(raw)
	return b
}

func FuzzParseURISANs(f *testing.F) {
	f.Add(generalNames("spiffe://default/web"))
	f.Add(generalNames("spiffe://default/a", "spiffe://default/b"))
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		uris, err := peer.ParseURISANs(der)
		if err != nil {
			return
		}
		for _, u := range uris {
			// A name is bytes of the input, ASCII only.
			if !strings.Contains(string(der), u) {
				t.Fatalf("%q is not in the input", u)
			}
			for _, c := range []byte(u) {
				if c >= 0x80 {
					t.Fatalf("non-ASCII %q", u)
				}
			}
		}
		// What parses re-encodes to something that parses the same (the
		// URI entries survive; other names are dropped).
		again, err := peer.ParseURISANs(generalNames(uris...))
		if err != nil || !slices.Equal(again, uris) {
			t.Fatalf("round trip of %q: %q, %v", uris, again, err)
		}
	})
}
