// Package secret holds the SDS secrets of trellis-dp: workload
// certificates (tls_certificate) and CA bundles (validation_context), by
// name. The Store is swapped atomically as a whole on every configuration
// update, and TLS handshakes read it each time they need a certificate or
// the trusted CAs: a new secret under the same name applies to the next
// handshake while open connections stay as they are.
package secret

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// ErrNotReady is returned for a secret that is referenced but has not
// arrived (or is of the other kind): handshakes that need it fail until
// it comes.
var ErrNotReady = errors.New("secret not received yet")

// Secret is one parsed Secret resource: exactly one of Certificate and
// Roots is set.
type Secret struct {
	// Name is the resource name.
	Name string
	// Certificate is the tls_certificate: the chain (leaf first, parsed
	// in Leaf) and its private key.
	Certificate *tls.Certificate
	// Roots is the validation_context's trusted_ca bundle.
	Roots *x509.CertPool
	// CACerts are the certificates of Roots, in bundle order.
	CACerts []*x509.Certificate
}

// Parse checks and parses a Secret resource.
func Parse(s *tlsv3.Secret) (*Secret, error) {
	out := &Secret{Name: s.GetName()}
	switch t := s.GetType().(type) {
	case *tlsv3.Secret_TlsCertificate:
		cert, err := parseCertificate(t.TlsCertificate)
		if err != nil {
			return nil, fmt.Errorf("tls_certificate: %w", err)
		}
		out.Certificate = cert
	case *tlsv3.Secret_ValidationContext:
		vc := t.ValidationContext
		if len(vc.GetMatchTypedSubjectAltNames()) > 0 {
			return nil, errors.New("validation_context.match_typed_subject_alt_names is not supported in a Secret (set it in the TLS context's default_validation_context)")
		}
		pemBytes, err := data(vc.GetTrustedCa())
		if err != nil {
			return nil, fmt.Errorf("validation_context.trusted_ca: %w", err)
		}
		if out.CACerts, err = parseBundle(pemBytes); err != nil {
			return nil, fmt.Errorf("validation_context.trusted_ca: %w", err)
		}
		out.Roots = x509.NewCertPool()
		for _, c := range out.CACerts {
			out.Roots.AddCert(c)
		}
	default:
		return nil, errors.New("tls_certificate or validation_context is required")
	}
	return out, nil
}

func parseCertificate(tc *tlsv3.TlsCertificate) (*tls.Certificate, error) {
	chain, err := data(tc.GetCertificateChain())
	if err != nil {
		return nil, fmt.Errorf("certificate_chain: %w", err)
	}
	key, err := data(tc.GetPrivateKey())
	if err != nil {
		return nil, fmt.Errorf("private_key: %w", err)
	}
	cert, err := tls.X509KeyPair(chain, key)
	if err != nil {
		return nil, err
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certificate_chain: %w", err)
		}
	}
	return &cert, nil
}

// data returns the bytes of an inline DataSource.
func data(ds *corev3.DataSource) ([]byte, error) {
	switch s := ds.GetSpecifier().(type) {
	case *corev3.DataSource_InlineBytes:
		return s.InlineBytes, nil
	case *corev3.DataSource_InlineString:
		return []byte(s.InlineString), nil
	case nil:
		return nil, errors.New("inline_bytes is required")
	default:
		return nil, errors.New("only inline_bytes and inline_string are supported")
	}
}

// parseBundle parses a PEM bundle of CA certificates; anything else in it
// is an error.
func parseBundle(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %q, want CERTIFICATE", len(out), block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out), err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}

// Store is the set of secrets of the running configuration. Its methods
// are safe for concurrent use; reads take no lock.
type Store struct {
	secrets atomic.Pointer[map[string]*Secret]
}

// NewStore returns an empty Store.
func NewStore() *Store {
	s := &Store{}
	s.secrets.Store(&map[string]*Secret{})
	return s
}

// Swap replaces the whole set of secrets at once.
func (s *Store) Swap(secrets map[string]*Secret) {
	m := maps.Clone(secrets)
	if m == nil {
		m = map[string]*Secret{}
	}
	s.secrets.Store(&m)
}

// Get returns the secret with the given name, or nil.
func (s *Store) Get(name string) *Secret { return (*s.secrets.Load())[name] }

// Names returns the names of the secrets held, sorted.
func (s *Store) Names() []string { return slices.Sorted(maps.Keys(*s.secrets.Load())) }

// Certificate returns the tls_certificate secret with the given name.
func (s *Store) Certificate(name string) (*tls.Certificate, error) {
	if sec := s.Get(name); sec != nil && sec.Certificate != nil {
		return sec.Certificate, nil
	}
	return nil, fmt.Errorf("tls_certificate %q: %w", name, ErrNotReady)
}

// Roots returns the trusted CAs of the validation_context secret with the
// given name.
func (s *Store) Roots(name string) (*x509.CertPool, error) {
	if sec := s.Get(name); sec != nil && sec.Roots != nil {
		return sec.Roots, nil
	}
	return nil, fmt.Errorf("validation_context %q: %w", name, ErrNotReady)
}
