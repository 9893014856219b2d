package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

// The HAProxy pair's certificates load as HAProxy's "crt" files (the
// certificate then its key) and chain to the test CA for their own use
// only: the server's for serverAuth under its name, the client's for
// clientAuth.
func TestWriteHAProxyPKI(t *testing.T) {
	pki, err := writeHAProxyPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(pki.ca)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	for _, c := range []struct {
		path      string
		use, not  x509.ExtKeyUsage
		dnsName   string
		wantUsage string
	}{
		{pki.server, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth, haproxyServerName, "serverAuth"},
		{pki.client, x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth, "", "clientAuth"},
	} {
		pair, err := tls.LoadX509KeyPair(c.path, c.path)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		leaf := pair.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: c.dnsName, KeyUsages: []x509.ExtKeyUsage{c.use}}); err != nil {
			t.Errorf("%s for %s: %v", c.path, c.wantUsage, err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{c.not}}); err == nil {
			t.Errorf("%s verifies for a use other than %s", c.path, c.wantUsage)
		}
		if leaf.PublicKeyAlgorithm != x509.ECDSA {
			t.Errorf("%s: key algorithm %s, want ECDSA", c.path, leaf.PublicKeyAlgorithm)
		}
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Trellis pair":             "trellis-pair",
		"Trellis pair, mTLS":       "trellis-pair-mtls",
		"trellis-dp server (mTLS)": "trellis-dp-server-mtls",
		"direct":                   "direct",
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}
