package secret_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/secret"
)

func selfSigned(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

func inline(b []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
}

func TestParseAndStore(t *testing.T) {
	cert, key := selfSigned(t, "a")
	ca1, _ := selfSigned(t, "ca1")
	ca2, _ := selfSigned(t, "ca2")
	id, err := secret.Parse(&tlsv3.Secret{Name: "identity:web", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: inline(cert), PrivateKey: inline(key)}}})
	if err != nil {
		t.Fatal(err)
	}
	if id.Certificate.Leaf == nil || id.Certificate.Leaf.Subject.CommonName != "a" {
		t.Fatalf("leaf %v", id.Certificate.Leaf)
	}
	bundle, err := secret.Parse(&tlsv3.Secret{Name: "mesh_ca:default", Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
		TrustedCa: inline(append(append([]byte{}, ca1...), ca2...))}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(bundle.CACerts) != 2 {
		t.Fatalf("%d CA certificates", len(bundle.CACerts))
	}

	s := secret.NewStore()
	if _, err := s.Certificate("identity:web"); !errors.Is(err, secret.ErrNotReady) {
		t.Fatalf("missing certificate: %v", err)
	}
	s.Swap(map[string]*secret.Secret{"identity:web": id, "mesh_ca:default": bundle})
	if c, err := s.Certificate("identity:web"); err != nil || c != id.Certificate {
		t.Fatalf("Certificate = %v, %v", c, err)
	}
	if _, err := s.Roots("identity:web"); !errors.Is(err, secret.ErrNotReady) {
		t.Fatalf("a certificate used as CA bundle: %v", err)
	}
	if _, err := s.Roots("mesh_ca:default"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Names(), ","); got != "identity:web,mesh_ca:default" {
		t.Fatalf("Names = %s", got)
	}
}

func TestParseRejects(t *testing.T) {
	cert, key := selfSigned(t, "a")
	_, otherKey := selfSigned(t, "b")
	for _, tc := range []struct {
		name string
		s    *tlsv3.Secret
		want string
	}{
		{"no type", &tlsv3.Secret{Name: "x"}, "tls_certificate or validation_context is required"},
		{"key mismatch", &tlsv3.Secret{Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: inline(cert), PrivateKey: inline(otherKey)}}}, "tls_certificate: tls: private key does not match public key"},
		{"no key", &tlsv3.Secret{Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: inline(cert)}}}, "private_key: inline_bytes is required"},
		{"key in bundle", &tlsv3.Secret{Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: inline(append(append([]byte{}, cert...), key...))}}}, `PEM block 1 is a "EC PRIVATE KEY", want CERTIFICATE`},
		{"SAN matchers", &tlsv3.Secret{Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: inline(cert), MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{}}}}}, "match_typed_subject_alt_names is not supported in a Secret"},
	} {
		_, err := secret.Parse(tc.s)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
