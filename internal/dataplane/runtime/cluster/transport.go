package cluster

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
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
	if c.http2 {
		// HTTP/2 with prior knowledge over plain TCP (h2c), as Envoy's
		// http2_protocol_options without TLS.
		// Go opens another connection when a server's stream limit is
		// reached.
		t.Protocols.SetUnencryptedHTTP2(true)
	} else {
		t.Protocols.SetHTTP1(true)
	}
	return t
}

// dialCounted dials for the HTTP transport and wraps the connection so
// that bytes and its closing are counted.
func (c *Cluster) dialCounted(ctx context.Context, network, addr string) (net.Conn, error) {
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
