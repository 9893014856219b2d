package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// clockSkew backdates the certificates this package issues, so that a peer
// whose clock is a little behind still accepts them.
const clockSkew = 10 * time.Second

// Sentinel errors.
var (
	// ErrNotCA says a certificate cannot sign workload certificates.
	ErrNotCA = errors.New("not a certificate authority")
	// ErrExpired says the enabled CA's certificate has expired.
	ErrExpired = errors.New("the CA certificate has expired")
)

// Authority is one loaded certificate authority: the certificate (and the
// chain above it, for an intermediate) and the key that signs workload
// certificates.
type Authority struct {
	// Backend is the mesh backend the CA belongs to.
	Backend string
	// CertPEM is the CA certificate as configured, possibly followed by
	// the certificates above it.
	CertPEM []byte
	cert    *x509.Certificate
	// chain holds the PEM of the CA certificates a workload certificate
	// is sent with: empty for a self-signed root, the configured chain for
	// an intermediate CA.
	chain  []byte
	signer crypto.Signer
	// fingerprint identifies the CA (its certificate and key) so that
	// certificates issued by an older CA under the same name are replaced.
	fingerprint [sha256.Size]byte
}

// Certificate returns the CA certificate that signs workload certificates.
func (a *Authority) Certificate() *x509.Certificate { return a.cert }

// parseAuthority loads a CA from its PEM certificate and key and checks
// that the key matches and that the certificate may sign certificates.
func parseAuthority(backend string, certPEM, keyPEM []byte) (*Authority, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("not a valid certificate and key pair: %w", err)
	}
	certs := make([]*x509.Certificate, 0, len(pair.Certificate))
	for _, der := range pair.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("not a valid X.509 certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if err := checkCA(certs[0]); err != nil {
		return nil, err
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("the private key (%T) cannot sign", pair.PrivateKey)
	}
	a := &Authority{Backend: backend, CertPEM: certPEM, cert: certs[0], signer: signer}
	if !selfSigned(certs[0]) {
		var chain bytes.Buffer
		for _, der := range pair.Certificate {
			_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
		}
		a.chain = chain.Bytes()
	}
	h := sha256.New()
	h.Write(certPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	copy(a.fingerprint[:], h.Sum(nil))
	return a, nil
}

// checkCA reports why cert cannot be a mesh CA (X509-SVID rules: CA basic
// constraint, keyCertSign usage, no keyAgreement usage).
func checkCA(cert *x509.Certificate) error {
	var problems []error
	if !cert.BasicConstraintsValid || !cert.IsCA {
		problems = append(problems, fmt.Errorf("%w: basic constraint 'CA' must be set to 'true'", ErrNotCA))
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		problems = append(problems, fmt.Errorf("%w: key usage 'keyCertSign' must be set", ErrNotCA))
	}
	if cert.KeyUsage&x509.KeyUsageKeyAgreement != 0 {
		problems = append(problems, fmt.Errorf("%w: key usage 'keyAgreement' must not be set", ErrNotCA))
	}
	return errors.Join(problems...)
}

func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating a serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // never zero
}

// issue signs a workload certificate for spiffe://<mesh>/<service>, valid
// from now (backdated by clockSkew) for lifetime. The key is ECDSA P-256.
func (a *Authority) issue(mesh, service string, now time.Time, lifetime time.Duration) (proxymodel.Identity, error) {
	id := proxymodel.SpiffeID(mesh, service)
	uri, err := url.Parse(id)
	if err != nil || uri.String() != id {
		return proxymodel.Identity{}, fmt.Errorf("service %q of mesh %q does not make a valid SPIFFE ID", service, mesh)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return proxymodel.Identity{}, fmt.Errorf("generating a workload key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return proxymodel.Identity{}, err
	}
	notAfter := now.Add(lifetime)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{}, // SPIFFE: the identity is the URI SAN alone
		URIs:                  []*url.URL{uri},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.signer)
	if err != nil {
		return proxymodel.Identity{}, fmt.Errorf("signing the workload certificate of %s: %w", id, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return proxymodel.Identity{}, fmt.Errorf("encoding the workload key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return proxymodel.Identity{
		Service:  service,
		SpiffeID: id,
		CertPEM:  append(certPEM, a.chain...),
		KeyPEM:   pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}
