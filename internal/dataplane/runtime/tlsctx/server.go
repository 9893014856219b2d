package tlsctx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/peer"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/secret"
)

// Server is a compiled DownstreamTlsContext, immutable once built.
type Server struct {
	common
	requireClient bool
	cfg           *tls.Config
}

// NewServer checks a DownstreamTlsContext and builds its server side. The
// certificate and the trusted CAs are read from store per handshake.
func NewServer(d *tlsv3.DownstreamTlsContext, store *secret.Store, st *Stats) (*Server, error) {
	c, err := parseCommon(d.GetCommonTlsContext(), store, st)
	if err != nil {
		return nil, fmt.Errorf("common_tls_context: %w", err)
	}
	if c.certName == "" {
		return nil, errors.New("common_tls_context.tls_certificate_sds_secret_configs: a certificate is required")
	}
	s := &Server{common: c, requireClient: d.GetRequireClientCertificate().GetValue()}
	if s.requireClient && c.caName == "" {
		return nil, errors.New("require_client_certificate needs common_tls_context.combined_validation_context")
	}
	s.cfg = &tls.Config{
		NextProtos:     c.alpn,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.certificate() },
	}
	s.params.apply(s.cfg)
	if c.caName != "" {
		// Go must not verify on its own (it would need the CAs up front):
		// the certificate is requested and VerifyConnection decides.
		s.cfg.ClientAuth = tls.RequestClientCert
		s.cfg.VerifyConnection = s.verifyClient
	}
	return s, nil
}

func (s *Server) verifyClient(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 && !s.requireClient {
		return nil
	}
	return s.verify(cs.PeerCertificates)
}

// Handshake runs the server side of a TLS handshake on conn, bounded by
// ctx, and returns the TLS connection with the verified identity of its
// peer. On error conn is not closed.
func (s *Server) Handshake(ctx context.Context, conn net.Conn) (*tls.Conn, *peer.Identity, error) {
	tc := tls.Server(conn, s.cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		s.stats.ConnectionError.Inc()
		return nil, nil, fmt.Errorf("TLS handshake: %w", err)
	}
	s.stats.Handshake.Inc()
	cs := tc.ConnectionState()
	if cs.DidResume {
		s.stats.SessionReused.Inc()
	}
	if len(cs.PeerCertificates) == 0 {
		s.stats.NoCertificate.Inc()
	}
	return tc, peer.FromConnectionState(&cs), nil
}
