package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// haproxyServerName is the DNS name in the server HAProxy's certificate,
// which the client HAProxy verifies (verifyhost), as a sidecar verifies
// its peer's SPIFFE ID.
const haproxyServerName = "haproxy-server.bench"

// haproxyPKI are the files of the HAProxy mTLS pair: a test CA and, for
// each HAProxy, its certificate followed by its key (HAProxy's "crt"
// format).
type haproxyPKI struct {
	ca, server, client string
}

// writeHAProxyPKI generates a CA and two ECDSA P-256 certificates signed
// by it (the server's for serverAuth, the client's for clientAuth, like
// the sidecars' workload certificates) into dir.
func writeHAProxyPKI(dir string) (*haproxyPKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	now := time.Now().Add(-time.Hour)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the test CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "trellis bench test CA"},
		NotBefore:             now,
		NotAfter:              now.Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("signing the test CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	pki := &haproxyPKI{
		ca:     filepath.Join(dir, "ca.pem"),
		server: filepath.Join(dir, "server.pem"),
		client: filepath.Join(dir, "client.pem"),
	}
	if err := os.WriteFile(pki.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		return nil, err
	}
	for i, leaf := range []struct {
		path  string
		name  string
		usage x509.ExtKeyUsage
	}{
		{pki.server, haproxyServerName, x509.ExtKeyUsageServerAuth},
		{pki.client, "haproxy-client.bench", x509.ExtKeyUsageClientAuth},
	} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generating a key for %s: %w", leaf.name, err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)),
			Subject:      pkix.Name{CommonName: leaf.name},
			DNSNames:     []string{leaf.name},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore:    now,
			NotAfter:     now.Add(48 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{leaf.usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return nil, fmt.Errorf("signing the certificate of %s: %w", leaf.name, err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
		if err := os.WriteFile(leaf.path, out, 0o600); err != nil {
			return nil, err
		}
	}
	return pki, nil
}
