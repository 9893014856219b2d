package server

import (
	"path/filepath"

	"github.com/trellis-mesh/trellis/internal/tlscert"
)

// Names of the generated DP-server certificate in the data dir.
const (
	CertFileName = "dp-server.crt"
	KeyFileName  = "dp-server.key"
)

// EnsureServerCert returns the DP server's certificate and key files in
// dir (TRELLIS_DATA_DIR/certs), generating a self-signed certificate for
// localhost, the loopback addresses, the host name and extraHosts when they
// are missing. The certificate is its own CA: it is the file that
// `trellis-dp --ca-cert-file` takes.
func EnsureServerCert(dir string, extraHosts []string) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName)
	if err := tlscert.Ensure(certFile, keyFile, "trellis-cp dp server", extraHosts); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}
