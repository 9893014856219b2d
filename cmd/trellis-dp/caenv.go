package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsclient"
)

// envCACert holds the control plane's CA certificate(s) as PEM content; the
// Kubernetes injector sets it on the sidecar. --ca-cert-file wins.
const envCACert = "TRELLIS_CONTROL_PLANE_CA_CERT"

// cpTLSConfig is the TLS configuration towards the control plane: its CA
// from --ca-cert-file, else from $TRELLIS_CONTROL_PLANE_CA_CERT, else the
// system roots.
func cpTLSConfig(caFile, serverName string) (*tls.Config, error) {
	pem := os.Getenv(envCACert)
	if caFile != "" || strings.TrimSpace(pem) == "" {
		return xdsclient.TLSConfig(caFile, serverName)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(pem)) {
		return nil, fmt.Errorf("$%s: no PEM certificate in it", envCACert)
	}
	cfg, err := xdsclient.TLSConfig("", serverName)
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = pool
	return cfg, nil
}
