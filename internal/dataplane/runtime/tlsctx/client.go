package tlsctx

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/secret"
)

// ErrHandshake wraps a failed upstream TLS handshake: for the HTTP proxy it
// is a connection failure.
var ErrHandshake = errors.New("upstream TLS handshake failed")

// sessionCacheSize is how many TLS sessions a cluster keeps for resumption,
// one per endpoint address at most.
const sessionCacheSize = 16

// sessionCache keeps TLS sessions by endpoint address (no SNI is sent, so
// that is Go's key) and by the client certificate they were made with: a
// rotated certificate starts new sessions, so that the server sees it on
// the next connection, as Envoy's new SSL context after a rotation does.
type sessionCache struct {
	c   *common
	lru tls.ClientSessionCache
}

func (s *sessionCache) Get(key string) (*tls.ClientSessionState, bool) {
	return s.lru.Get(s.certKey() + key)
}

func (s *sessionCache) Put(key string, cs *tls.ClientSessionState) {
	s.lru.Put(s.certKey()+key, cs)
}

// certKey identifies the client certificate and the trusted CAs of the
// moment: a session is resumed only with both unchanged, so a rotated
// certificate or a CA switch starts new sessions (a session made under the
// old CAs would fail verification against the new ones instead of falling
// back to a full handshake).
func (s *sessionCache) certKey() string {
	h := sha256.New()
	if s.c.certName != "" {
		if cert, err := s.c.store.Certificate(s.c.certName); err == nil && len(cert.Certificate) > 0 {
			h.Write(cert.Certificate[0])
		}
	}
	if s.c.caName != "" {
		if ca := s.c.store.Get(s.c.caName); ca != nil {
			for _, c := range ca.CACerts {
				h.Write(c.Raw)
			}
		}
	}
	return string(h.Sum(nil)) + "|"
}

// Client is a compiled UpstreamTlsContext, immutable once built.
type Client struct {
	common
	cfg *tls.Config
}

// NewClient checks an UpstreamTlsContext and builds its client side. No
// SNI is sent; the server is authenticated by its chain and its SANs.
func NewClient(u *tlsv3.UpstreamTlsContext, store *secret.Store, st *Stats) (*Client, error) {
	c, err := parseCommon(u.GetCommonTlsContext(), store, st)
	if err != nil {
		return nil, fmt.Errorf("common_tls_context: %w", err)
	}
	cl := &Client{common: c}
	cl.cfg = &tls.Config{
		NextProtos: c.alpn,
		// Go's own verification needs a server name and fixed roots;
		// VerifyConnection does it with the CAs of the moment instead.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cl.certName == "" {
				return &tls.Certificate{}, nil
			}
			return cl.certificate()
		},
		// New connections to an endpoint resume an earlier session: no
		// certificates or signatures are exchanged again. The peer's
		// chain (kept in the session) still goes through
		// VerifyConnection, against the CAs of the moment.
		ClientSessionCache: &sessionCache{c: &cl.common, lru: tls.NewLRUClientSessionCache(sessionCacheSize)},
	}
	cl.params.apply(cl.cfg)
	if c.caName != "" {
		cl.cfg.VerifyConnection = func(cs tls.ConnectionState) error { return cl.verify(cs.PeerCertificates) }
	}
	return cl, nil
}

// ALPN returns the configured alpn_protocols.
func (c *Client) ALPN() []string { return c.alpn }

// WithDefaultALPN returns a Client that offers protos when the context
// sets no alpn_protocols (the HTTP transport offers the protocol it
// speaks), sharing everything else with c.
func (c *Client) WithDefaultALPN(protos []string) *Client {
	if len(c.alpn) > 0 || len(protos) == 0 {
		return c
	}
	out := &Client{common: c.common, cfg: c.cfg.Clone()}
	out.alpn = slices.Clone(protos)
	out.cfg.NextProtos = out.alpn
	return out
}

// Handshake runs the client side of a TLS handshake on conn, bounded by
// ctx. On error conn is not closed; the error wraps ErrHandshake.
func (c *Client) Handshake(ctx context.Context, conn net.Conn) (*tls.Conn, error) {
	tc := tls.Client(conn, c.cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.stats.ConnectionError.Inc()
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	c.stats.Handshake.Inc()
	if tc.ConnectionState().DidResume {
		c.stats.SessionReused.Inc()
	}
	return tc, nil
}
