package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/api/system"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Defaults of a builtin CA, as in Kuma.
const (
	DefaultCARSABits  = 2048
	DefaultCAValidity = 10 * 365 * 24 * time.Hour
)

// KeyAlgorithm is the kind of key a builtin CA is generated with.
type KeyAlgorithm string

// Key algorithms of builtin CAs. The Mesh API (as Kuma's) has no field
// for it: meshes get RSA; ECDSA is for callers of GenerateCA.
const (
	RSA   KeyAlgorithm = "RSA"
	ECDSA KeyAlgorithm = "ECDSA" // P-256
)

// BuiltinCertSecret names the Secret holding the certificate of a mesh's
// builtin CA backend (Kuma's name).
func BuiltinCertSecret(meshName, backend string) string {
	return meshName + ".ca-builtin-cert-" + backend
}

// BuiltinKeySecret names the Secret holding the private key of a mesh's
// builtin CA backend (Kuma's name).
func BuiltinKeySecret(meshName, backend string) string {
	return meshName + ".ca-builtin-key-" + backend
}

// CAOptions configure a generated CA.
type CAOptions struct {
	// Algorithm is RSA (default) or ECDSA.
	Algorithm KeyAlgorithm
	// RSABits is the RSA key size (default 2048).
	RSABits int
	// Validity is how long the CA certificate is valid (default 10 years).
	Validity time.Duration
}

// builtinOptions reads a builtin backend's caCert settings.
func builtinOptions(b *mesh.CertificateAuthorityBackend) (CAOptions, error) {
	o := CAOptions{Algorithm: RSA}
	if b.Conf == nil || b.Conf.CACert == nil {
		return o, nil
	}
	if bits := b.Conf.CACert.RSABits; bits != nil {
		o.RSABits = int(*bits)
	}
	if exp := b.Conf.CACert.Expiration; exp != "" {
		d, err := mesh.ParseCertDuration(exp)
		if err != nil {
			return o, fmt.Errorf("caCert.expiration: %w", err)
		}
		o.Validity = d
	}
	return o, nil
}

// GenerateKey returns a new private key and its PEM (PKCS#1 for RSA, SEC 1
// for ECDSA, the encodings Kuma stores).
func GenerateKey(o CAOptions) (crypto.Signer, []byte, error) {
	switch o.Algorithm {
	case ECDSA:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("generating an ECDSA key: %w", err)
		}
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, nil, err
		}
		return k, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	case RSA, "":
		bits := o.RSABits
		if bits == 0 {
			bits = DefaultCARSABits
		}
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, nil, fmt.Errorf("generating an RSA key: %w", err)
		}
		return k, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	}
	return nil, nil, fmt.Errorf("unknown key algorithm %q", o.Algorithm)
}

// selfSignCA returns the PEM of a self-signed CA certificate for a mesh
// (trust domain) over key.
func selfSignCA(meshName string, key crypto.Signer, now time.Time, validity time.Duration) ([]byte, error) {
	if validity <= 0 {
		validity = DefaultCAValidity
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Trellis"}, OrganizationalUnit: []string{"Mesh"}, CommonName: meshName},
		URIs:                  []*url.URL{{Scheme: "spiffe", Host: meshName}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("signing the CA certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// GenerateCA returns a new self-signed CA for a mesh: certificate and key
// as PEM.
func GenerateCA(meshName string, o CAOptions, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, keyPEM, err := GenerateKey(o)
	if err != nil {
		return nil, nil, err
	}
	certPEM, err = selfSignCA(meshName, key, now, o.Validity)
	if err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// ensureBuiltin returns the builtin CA of a backend, generating and
// storing it when it is missing. Several control-plane instances may run
// it at once and converge on one CA: the key is created first (create if
// missing; the loser of a race reads the winner's key), then a certificate
// is made for the stored key and created if missing, so whichever
// certificate is stored matches the stored key. A crash between the two
// writes is repaired by the next call.
func (m *Manager) ensureBuiltin(ctx context.Context, meshName string, b *mesh.CertificateAuthorityBackend) (*Authority, error) {
	certName, keyName := BuiltinCertSecret(meshName, b.Name), BuiltinKeySecret(meshName, b.Name)
	certPEM, certErr := m.secret(ctx, meshName, certName)
	keyPEM, keyErr := m.secret(ctx, meshName, keyName)
	if certErr == nil && keyErr == nil {
		return m.authority(b.Name, certPEM, keyPEM)
	}
	for _, err := range []error{certErr, keyErr} {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	o, err := builtinOptions(b)
	if err != nil {
		return nil, err
	}
	if keyErr != nil {
		var generated []byte
		if _, generated, err = GenerateKey(o); err != nil {
			return nil, err
		}
		if keyPEM, err = m.createSecretIfMissing(ctx, meshName, keyName, generated); err != nil {
			return nil, err
		}
	}
	if certErr != nil {
		key, err := parseKey(keyPEM)
		if err != nil {
			return nil, fmt.Errorf("secret %q: %w", keyName, err)
		}
		generated, err := selfSignCA(meshName, key, m.now(), o.Validity)
		if err != nil {
			return nil, err
		}
		if certPEM, err = m.createSecretIfMissing(ctx, meshName, certName, generated); err != nil {
			return nil, err
		}
		m.log.Info("builtin CA ready", "mesh", meshName, "backend", b.Name)
	}
	return m.authority(b.Name, certPEM, keyPEM)
}

// parseKey reads a PEM private key (PKCS#1, SEC 1 or PKCS#8).
func parseKey(keyPEM []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no PEM private key")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing the private key: %w", err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T private key cannot sign", key)
	}
	return s, nil
}

func (m *Manager) secretDesc() *resource.Descriptor {
	d, _ := m.mgr.Registry().ByKind(kinds.Secret)
	return d
}

// secret returns the decoded data of a Secret of the mesh.
func (m *Manager) secret(ctx context.Context, meshName, name string) ([]byte, error) {
	res, err := m.mgr.Get(ctx, m.secretDesc(), meshName, name)
	if err != nil {
		return nil, fmt.Errorf("secret %q of mesh %q: %w", name, meshName, err)
	}
	s, ok := res.Spec.(*system.Secret)
	if !ok {
		return nil, fmt.Errorf("secret %q of mesh %q: unexpected spec %T", name, meshName, res.Spec)
	}
	b, err := s.Bytes()
	if err != nil {
		return nil, fmt.Errorf("secret %q of mesh %q: %w", name, meshName, err)
	}
	return b, nil
}

// createSecretIfMissing stores data under name unless the Secret exists;
// it returns what is stored (data, or another writer's data).
func (m *Manager) createSecretIfMissing(ctx context.Context, meshName, name string, data []byte) ([]byte, error) {
	body, err := json.Marshal(map[string]any{
		"type": kinds.Secret, "mesh": meshName, "name": name,
		"data": base64.StdEncoding.EncodeToString(data),
	})
	if err != nil {
		return nil, err
	}
	obj, err := resource.ParseObject(body)
	if err != nil {
		return nil, err
	}
	res, err := resource.DecodeObject(m.secretDesc(), obj)
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, err)
	}
	err = m.mgr.Create(ctx, res)
	switch {
	case err == nil:
		return data, nil
	case errors.Is(err, store.ErrAlreadyExists):
		return m.secret(ctx, meshName, name)
	}
	return nil, fmt.Errorf("creating secret %q of mesh %q: %w", name, meshName, err)
}
