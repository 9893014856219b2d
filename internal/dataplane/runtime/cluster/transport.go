package cluster

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/tlsctx"
)

// Upstream pool settings. Envoy pools without a per-host idle limit (its
// circuit breakers cap connections at 1024); a generous idle limit keeps
// keep-alive connections reused under concurrency instead of churned.
const (
	maxIdleConnsPerHost = 256
	idleConnTimeout     = 5 * time.Minute
)

// newTransport builds the cluster's HTTP transport. It never uses a proxy
// from the environment, never adds Accept-Encoding (bodies pass through
// untouched), and dials through the cluster so that connections are counted
// and bounded by connect_timeout.
func (c *Cluster) newTransport() *http.Transport {
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         c.dialCounted,
		DisableCompression:  true,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: maxIdleConnsPerHost,
		IdleConnTimeout:     idleConnTimeout,
		Protocols:           new(http.Protocols),
	}
	switch {
	case c.tls != nil:
		// The TLS connection is made by dialTLS, with the cluster's
		// certificate and verification; ALPN picks the protocol (the
		// http2 cluster offers h2, the other http/1.1, unless the
		// UpstreamTlsContext says otherwise).
		t.DialContext = nil
		alpn := "http/1.1"
		if c.http2 {
			alpn = "h2"
			t.Protocols.SetHTTP2(true)
		} else {
			t.Protocols.SetHTTP1(true)
		}
		httpTLS := c.tls.WithDefaultALPN([]string{alpn})
		t.DialTLSContext = func(ctx context.Context, _, addr string) (net.Conn, error) {
			return c.dialTLS(ctx, httpTLS, addr)
		}
	case c.http2:
		// HTTP/2 with prior knowledge over plain TCP (h2c), as Envoy's
		// http2_protocol_options without TLS.
		// Go opens another connection when a server's stream limit is
		// reached.
		t.Protocols.SetUnencryptedHTTP2(true)
	default:
		t.Protocols.SetHTTP1(true)
	}
	return t
}

// dialTLS dials and handshakes for the HTTP transport within the connect
// timeout. Bytes are counted under TLS, as they go on the wire.
func (c *Cluster) dialTLS(ctx context.Context, tc *tlsctx.Client, addr string) (net.Conn, error) {
	ctx, cancel := c.connectContext(ctx)
	defer cancel()
	conn, err := c.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	counted := &countedConn{Conn: conn, stats: c.stats}
	out, err := c.handshake(ctx, tc, counted, addr)
	if err != nil {
		_ = counted.Close()
		return nil, err
	}
	return out, nil
}

// dialCounted dials for the HTTP transport and wraps the connection so
// that bytes and its closing are counted.
func (c *Cluster) dialCounted(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := c.connectContext(ctx)
	defer cancel()
	conn, err := c.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: conn, stats: c.stats}, nil
}

// countedConn counts the bytes of an upstream HTTP connection and
// decrements upstream_cx_active once when it closes.
type countedConn struct {
	net.Conn
	stats *Stats
	once  sync.Once
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.stats.CxRxBytes.Add(uint64(n))
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.stats.CxTxBytes.Add(uint64(n))
	return n, err
}

func (c *countedConn) Close() error {
	c.once.Do(c.stats.CxActive.Dec)
	return c.Conn.Close()
}
