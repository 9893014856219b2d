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

// pinnedSessions is the session cache one handshake sees: the shared LRU
// of the context, keyed by endpoint address (no SNI is sent, so that is
// Go's key) behind a prefix naming the client certificate and the trusted
// CAs the handshake started with. A session is resumed only under the
// identity and CAs it was made with, so a rotated certificate or a CA
// switch starts new sessions, as Envoy's new SSL context after a rotation
// does (a session made under the old CAs would fail verification against
// the new ones instead of falling back to a full handshake). The prefix is
// fixed per handshake because TLS 1.3 tickets arrive after it: a ticket
// read after a rotation still belongs to the old identity.
type pinnedSessions struct {
	prefix string
	lru    tls.ClientSessionCache
}

func (p pinnedSessions) Get(key string) (*tls.ClientSessionState, bool) {
	return p.lru.Get(p.prefix + key)
}

func (p pinnedSessions) Put(key string, cs *tls.ClientSessionState) {
	p.lru.Put(p.prefix+key, cs)
}

// sessionPrefix identifies a client certificate (nil: none) and the
// trusted CAs of the moment.
func (c *common) sessionPrefix(cert *tls.Certificate) string {
	h := sha256.New()
	if cert != nil && len(cert.Certificate) > 0 {
		h.Write(cert.Certificate[0])
	}
	if c.caName != "" {
		if ca := c.store.Get(c.caName); ca != nil {
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
	// sessions is the LRU of resumable sessions, shared by the copies
	// WithDefaultALPN makes; each handshake sees it through pinnedSessions.
	sessions tls.ClientSessionCache
}

// NewClient checks an UpstreamTlsContext and builds its client side. The
// SNI is sent when the context sets sni; the server is authenticated by
// its chain and its SANs.
func NewClient(u *tlsv3.UpstreamTlsContext, store *secret.Store, st *Stats) (*Client, error) {
	c, err := parseCommon(u.GetCommonTlsContext(), store, st)
	if err != nil {
		return nil, fmt.Errorf("common_tls_context: %w", err)
	}
	cl := &Client{common: c, sessions: tls.NewLRUClientSessionCache(sessionCacheSize)}
	cl.cfg = &tls.Config{
		NextProtos: c.alpn,
		// Go's own verification needs a server name and fixed roots;
		// VerifyConnection does it with the CAs of the moment instead.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		// New connections to an endpoint resume an earlier session: no
		// certificates or signatures are exchanged again. The peer's
		// chain (kept in the session) still goes through
		// VerifyConnection, against the CAs of the moment. Handshake sets
		// the client certificate and the session cache per connection.
	}
	cl.params.apply(cl.cfg)
	// sni: the server name sent (a zone ingress routes by it); the server
	// is still authenticated by its SANs only.
	cl.cfg.ServerName = u.GetSni()
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
	out := &Client{common: c.common, cfg: c.cfg.Clone(), sessions: c.sessions}
	out.alpn = slices.Clone(protos)
	out.cfg.NextProtos = out.alpn
	return out
}

// Handshake runs the client side of a TLS handshake on conn, bounded by
// ctx. On error conn is not closed; the error wraps ErrHandshake.
func (c *Client) Handshake(ctx context.Context, conn net.Conn) (*tls.Conn, error) {
	// The identity is read once: the certificate presented and the key
	// the session is filed under are the same (pinnedSessions).
	var cert *tls.Certificate
	var certErr error
	if c.certName != "" {
		cert, certErr = c.certificate()
	}
	cfg := c.cfg.Clone()
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if c.certName == "" {
			return &tls.Certificate{}, nil
		}
		return cert, certErr
	}
	cfg.ClientSessionCache = pinnedSessions{prefix: c.sessionPrefix(cert), lru: c.sessions}
	tc := tls.Client(conn, cfg)
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
