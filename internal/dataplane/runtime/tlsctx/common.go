// Package tlsctx implements the envoy.transport_sockets.tls transport
// socket with Go's crypto/tls: DownstreamTlsContext (the server side of
// inbound listeners) and UpstreamTlsContext (the client side of cluster
// connections), with certificates and trusted CAs from SDS secrets.
//
// Nothing secret is copied into a tls.Config: the certificate is fetched
// from the secret.Store in GetCertificate/GetClientCertificate and the
// peer's chain is verified in VerifyConnection against the CA bundle read
// from the store at that moment. Rotating a secret therefore only changes
// the next handshakes; open connections and connection pools stay.
package tlsctx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/strmatch"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/xdsutil"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/peer"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/secret"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// Errors of peer verification, wrapped in handshake errors.
var (
	ErrNoPeerCertificate = errors.New("peer presented no certificate")
	ErrUntrusted         = errors.New("peer certificate not trusted")
	ErrSANMismatch       = errors.New("peer certificate SAN does not match")
)

// Stats are the TLS metrics of a listener or cluster, named
// <scope>.ssl.<metric> as in Envoy.
type Stats struct {
	Handshake        *stats.Counter
	ConnectionError  *stats.Counter
	NoCertificate    *stats.Counter
	FailVerifyNoCert *stats.Counter
	FailVerifyError  *stats.Counter
	FailVerifySAN    *stats.Counter
	FailNoSecret     *stats.Counter
	SessionReused    *stats.Counter
}

// NewStats registers the TLS metrics under scope (listener.<addr> or
// cluster.<name>).
func NewStats(reg stats.Registry, scope string) *Stats {
	sc := stats.NewScope(reg, scope+".ssl")
	return &Stats{
		Handshake:        sc.Counter("handshake"),
		ConnectionError:  sc.Counter("connection_error"),
		NoCertificate:    sc.Counter("no_certificate"),
		FailVerifyNoCert: sc.Counter("fail_verify_no_cert"),
		FailVerifyError:  sc.Counter("fail_verify_error"),
		FailVerifySAN:    sc.Counter("fail_verify_san"),
		// Not an Envoy name: handshakes that failed because a referenced
		// SDS secret had not arrived.
		FailNoSecret:  sc.Counter("fail_no_secret"),
		SessionReused: sc.Counter("session_reused"),
	}
}

// common is a compiled CommonTlsContext.
type common struct {
	store    *secret.Store
	stats    *Stats
	params   params
	certName string // "" for no certificate (a client may have none)
	caName   string // "" for no peer verification
	sans     []sanMatcher
	alpn     []string
}

// sanMatcher is a compiled SubjectAltNameMatcher.
type sanMatcher struct {
	dns bool // else URI
	m   strmatch.Matcher
}

// parseCommon checks a CommonTlsContext against what trellis-dp
// implements: TLS 1.2 or 1.3 versions, TLS 1.2 cipher suites, at most one certificate and one
// validation context, both from SDS over ADS, URI or DNS SAN matchers.
func parseCommon(c *tlsv3.CommonTlsContext, store *secret.Store, st *Stats) (common, error) {
	out := common{store: store, stats: st, alpn: c.GetAlpnProtocols()}
	var err error
	if out.params, err = parseParams(c.GetTlsParams()); err != nil {
		return out, err
	}
	switch refs := c.GetTlsCertificateSdsSecretConfigs(); len(refs) {
	case 0:
	case 1:
		name, err := sdsName(refs[0])
		if err != nil {
			return out, fmt.Errorf("tls_certificate_sds_secret_configs[0]: %w", err)
		}
		out.certName = name
	default:
		return out, fmt.Errorf("tls_certificate_sds_secret_configs: at most one certificate is supported, got %d", len(refs))
	}
	if cvc := c.GetCombinedValidationContext(); cvc != nil {
		if cvc.GetValidationContextSdsSecretConfig() == nil {
			return out, errors.New("combined_validation_context.validation_context_sds_secret_config is required")
		}
		name, err := sdsName(cvc.GetValidationContextSdsSecretConfig())
		if err != nil {
			return out, fmt.Errorf("combined_validation_context.validation_context_sds_secret_config: %w", err)
		}
		out.caName = name
		for i, m := range cvc.GetDefaultValidationContext().GetMatchTypedSubjectAltNames() {
			sm, err := compileSAN(m)
			if err != nil {
				return out, fmt.Errorf("combined_validation_context.default_validation_context.match_typed_subject_alt_names[%d]: %w", i, err)
			}
			out.sans = append(out.sans, sm)
		}
	}
	return out, nil
}

func sdsName(r *tlsv3.SdsSecretConfig) (string, error) {
	if r.GetName() == "" {
		return "", errors.New("name is required")
	}
	if r.GetSdsConfig() == nil {
		return "", errors.New("sds_config is required (trellis-dp has no static secrets)")
	}
	if err := xdsutil.CheckADS(r.GetSdsConfig()); err != nil {
		return "", fmt.Errorf("sds_config: %w", err)
	}
	return r.GetName(), nil
}

func compileSAN(m *tlsv3.SubjectAltNameMatcher) (sanMatcher, error) {
	var out sanMatcher
	switch m.GetSanType() {
	case tlsv3.SubjectAltNameMatcher_URI:
	case tlsv3.SubjectAltNameMatcher_DNS:
		out.dns = true
	default:
		return out, fmt.Errorf("san_type %s is not supported (URI or DNS)", m.GetSanType())
	}
	if m.GetMatcher() == nil {
		return out, errors.New("matcher is required")
	}
	sm, err := strmatch.Compile(m.GetMatcher())
	if err != nil {
		return out, fmt.Errorf("matcher: %w", err)
	}
	out.m = sm
	return out, nil
}

// NewSANMatcher compiles a URI SAN matcher; for tests and fuzzing.
func NewSANMatcher(m *matcherv3.StringMatcher) (func(*x509.Certificate) bool, error) {
	sm, err := compileSAN(&tlsv3.SubjectAltNameMatcher{SanType: tlsv3.SubjectAltNameMatcher_URI, Matcher: m})
	if err != nil {
		return nil, err
	}
	c := common{sans: []sanMatcher{sm}}
	return c.matchSAN, nil
}

// matchSAN reports whether some SAN of leaf matches some matcher (or
// there are no matchers).
func (c *common) matchSAN(leaf *x509.Certificate) bool {
	if len(c.sans) == 0 {
		return true
	}
	var uris []string
	urisParsed := false
	for i := range c.sans {
		m := &c.sans[i]
		if m.dns {
			for _, n := range leaf.DNSNames {
				if m.m.Match(n) {
					return true
				}
			}
			continue
		}
		if !urisParsed {
			uris, urisParsed = peer.URISANs(leaf), true
		}
		for _, u := range uris {
			if m.m.Match(u) {
				return true
			}
		}
	}
	return false
}

// verify checks the peer's chain against the CA bundle of the validation
// context (read from the store now) and the leaf's SANs against the
// matchers. Any certificate after the leaf may serve as an intermediate;
// any extended key usage is accepted.
func (c *common) verify(certs []*x509.Certificate) error {
	if len(certs) == 0 {
		c.stats.FailVerifyNoCert.Inc()
		return ErrNoPeerCertificate
	}
	roots, err := c.store.Roots(c.caName)
	if err != nil {
		c.stats.FailNoSecret.Inc()
		return err
	}
	opts := x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	if len(certs) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, ic := range certs[1:] {
			opts.Intermediates.AddCert(ic)
		}
	}
	if _, err := certs[0].Verify(opts); err != nil {
		c.stats.FailVerifyError.Inc()
		return fmt.Errorf("%w: %w", ErrUntrusted, err)
	}
	if !c.matchSAN(certs[0]) {
		c.stats.FailVerifySAN.Inc()
		return fmt.Errorf("%w: %v", ErrSANMismatch, peer.URISANs(certs[0]))
	}
	return nil
}

// certificate returns the context's certificate from the store.
func (c *common) certificate() (*tls.Certificate, error) {
	cert, err := c.store.Certificate(c.certName)
	if err != nil {
		c.stats.FailNoSecret.Inc()
	}
	return cert, err
}

// SecretNames returns the SDS secrets the context references.
func (c *common) SecretNames() []string {
	var out []string
	for _, n := range []string{c.certName, c.caName} {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}
