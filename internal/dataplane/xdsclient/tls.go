package xdsclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSConfig returns the client TLS configuration for the control plane:
// server certificates are verified against the PEM CA bundle in caFile (the
// system roots when caFile is empty) and must be valid for serverName, the
// host of --cp-address.
func TLSConfig(caFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("reading the CA certificate %s: %w", caFile, errNoCertificates)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

var errNoCertificates = errors.New("no PEM certificates found")
