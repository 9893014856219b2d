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
		IdleConnTimeout:     c.protocol.idleTimeout,
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
	if err := c.beginPending(); err != nil {
		return nil, err
	}
	defer c.endPending()
	ctx, cancel := c.connectContext(ctx)
	defer cancel()
	conn, err := c.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	counted := c.countConn(conn)
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
	if err := c.beginPending(); err != nil {
		return nil, err
	}
	defer c.endPending()
	ctx, cancel := c.connectContext(ctx)
	defer cancel()
	conn, err := c.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return c.countConn(conn), nil
}

// countConn wraps a new connection of the net/http transport. Under
// max_connection_duration it is closed once expired and idle: at expiry
// the transport's idle connections are closed (other idle connections of
// the cluster go too, and are dialed again when needed), then again each
// second until this one, busy at expiry, has closed.
func (c *Cluster) countConn(conn net.Conn) *countedConn {
	cc := &countedConn{Conn: conn, c: c}
	if d := c.protocol.maxConnectionDuration; d > 0 {
		cc.mu.Lock()
		cc.expiry = time.AfterFunc(d, func() {
			c.transport.CloseIdleConnections()
			cc.mu.Lock()
			if !cc.closed {
				cc.expiry.Reset(time.Second)
			}
			cc.mu.Unlock()
		})
		cc.mu.Unlock()
	}
	return cc
}

// countedConn counts the bytes of an upstream HTTP connection and
// decrements upstream_cx_active once when it closes.
type countedConn struct {
	net.Conn
	c *Cluster

	mu     sync.Mutex
	closed bool
	expiry *time.Timer // max_connection_duration (net/http transport)
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.c.stats.CxRxBytes.Add(uint64(n))
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.c.stats.CxTxBytes.Add(uint64(n))
	return n, err
}

func (c *countedConn) Close() error {
	c.mu.Lock()
	first := !c.closed
	c.closed = true
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.mu.Unlock()
	if first {
		c.c.stats.CxActive.Dec()
		c.c.connClosed()
	}
	return c.Conn.Close()
}
