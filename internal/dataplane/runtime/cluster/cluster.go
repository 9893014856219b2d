// Package cluster implements trellis-dp's upstream clusters: their
// membership (EDS or STATIC load_assignment), round-robin load balancing
// over healthy endpoints, connection establishment with the cluster's
// connect timeout, the pool of HTTP/1.1 connections that the HTTP proxy's
// fast path sends requests over (GetH1, PutH1), and the pooled HTTP/1.1
// or HTTP/2 (h2c) net/http transport of its net/http path.
package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/tlsctx"
)

// ErrNoHealthyUpstream is returned when a cluster has no endpoint that may
// receive traffic (none known, or none HEALTHY/UNKNOWN).
var ErrNoHealthyUpstream = errors.New("no healthy upstream")

// ErrConnectTimeout wraps a connection attempt that exceeded the cluster's
// connect_timeout.
var ErrConnectTimeout = errors.New("upstream connect timeout")

// Stats are a cluster's metrics, named cluster.<name>.<metric> as in Envoy.
type Stats struct {
	CxTotal          *stats.Counter
	CxActive         *stats.Gauge
	CxConnectFail    *stats.Counter
	CxConnectTimeout *stats.Counter
	CxNoneHealthy    *stats.Counter
	CxRxBytes        *stats.Counter
	CxTxBytes        *stats.Counter
	RqTotal          *stats.Counter
	RqCompleted      *stats.Counter
	RqTimeout        *stats.Counter
	// RqClass counts completed requests by status class: RqClass[2] is
	// upstream_rq_2xx. Index 0 is unused.
	RqClass           [6]*stats.Counter
	MembershipHealthy *stats.Gauge
	MembershipTotal   *stats.Gauge
}

func newStats(reg stats.Registry, name string) *Stats {
	sc := stats.NewScope(reg, "cluster."+name)
	s := &Stats{
		CxTotal:           sc.Counter("upstream_cx_total"),
		CxActive:          sc.Gauge("upstream_cx_active"),
		CxConnectFail:     sc.Counter("upstream_cx_connect_fail"),
		CxConnectTimeout:  sc.Counter("upstream_cx_connect_timeout"),
		CxNoneHealthy:     sc.Counter("upstream_cx_none_healthy"),
		CxRxBytes:         sc.Counter("upstream_cx_rx_bytes_total"),
		CxTxBytes:         sc.Counter("upstream_cx_tx_bytes_total"),
		RqTotal:           sc.Counter("upstream_rq_total"),
		RqCompleted:       sc.Counter("upstream_rq_completed"),
		RqTimeout:         sc.Counter("upstream_rq_timeout"),
		MembershipHealthy: sc.Gauge("membership_healthy"),
		MembershipTotal:   sc.Gauge("membership_total"),
	}
	for i := 1; i <= 5; i++ {
		s.RqClass[i] = sc.Counter(fmt.Sprintf("upstream_rq_%dxx", i))
	}
	return s
}

// Cluster is one upstream cluster. Its definition is fixed; its membership
// changes atomically under it, taking effect for the next pick.
type Cluster struct {
	name           string
	def            *clusterv3.Cluster
	edsName        string
	http2          bool
	connectTimeout time.Duration
	stats          *Stats

	endpoints atomic.Pointer[endpointSet]
	transport *http.Transport
	tls       *tlsctx.Client // nil: plaintext
	h1TLS     *tlsctx.Client // tls offering ALPN http/1.1 by default
	h1        h1Pool         // HTTP/1.1 connections of the HTTP proxy's fast path
}

// Name returns the cluster's name.
func (c *Cluster) Name() string { return c.name }

// HTTP2 reports whether the upstream protocol is HTTP/2 (h2c, or h2 over
// TLS).
func (c *Cluster) HTTP2() bool { return c.http2 }

// TLS reports whether connections to the cluster use TLS.
func (c *Cluster) TLS() bool { return c.tls != nil }

// Scheme is the URL scheme of requests through Transport: https for a TLS
// cluster, else http.
func (c *Cluster) Scheme() string {
	if c.tls != nil {
		return "https"
	}
	return "http"
}

// Stats returns the cluster's metrics.
func (c *Cluster) Stats() *Stats { return c.stats }

// Endpoints returns the current membership, healthy or not.
func (c *Cluster) Endpoints() []Endpoint {
	if s := c.endpoints.Load(); s != nil {
		return s.all
	}
	return nil
}

// Pick returns the address of the next endpoint in round-robin order over
// the healthy members, or ErrNoHealthyUpstream (and counts it).
func (c *Cluster) Pick() (string, error) {
	if s := c.endpoints.Load(); s != nil {
		if addr, ok := s.pick(); ok {
			return addr, nil
		}
	}
	c.stats.CxNoneHealthy.Inc()
	return "", ErrNoHealthyUpstream
}

func (c *Cluster) setEndpoints(s *endpointSet) {
	c.endpoints.Store(s)
	c.stats.MembershipTotal.Set(int64(len(s.all)))
	c.stats.MembershipHealthy.Set(int64(len(s.healthy)))
}

// DialTCP picks an endpoint and connects to it within the cluster's
// connect timeout (TLS handshake included for a TLS cluster), counting the
// attempt. The caller owns the connection and must call
// c.Stats().CxActive.Dec() after closing it. A plaintext connection is a
// *net.TCPConn.
func (c *Cluster) DialTCP(ctx context.Context) (net.Conn, error) {
	addr, err := c.Pick()
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.connectContext(ctx)
	defer cancel()
	conn, err := c.dial(ctx, addr)
	if err != nil || c.tls == nil {
		return conn, err
	}
	tc, err := c.handshake(ctx, c.tls, conn, addr)
	if err != nil {
		_ = conn.Close()
		c.stats.CxActive.Dec()
		return nil, err
	}
	return tc, nil
}

// dial connects to addr before ctx ends, counting upstream_cx_total,
// upstream_cx_active and the failures.
func (c *Cluster) dial(ctx context.Context, addr string) (net.Conn, error) {
	c.stats.CxTotal.Inc()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		c.stats.CxConnectFail.Inc()
		if timedOut(ctx) {
			c.stats.CxConnectTimeout.Inc()
			return nil, fmt.Errorf("cluster %s: %s: %w", c.name, addr, ErrConnectTimeout)
		}
		return nil, fmt.Errorf("cluster %s: %w", c.name, err)
	}
	c.stats.CxActive.Inc()
	return conn, nil
}

// connectContext bounds a connection attempt (TCP connect and TLS
// handshake) by the cluster's connect_timeout.
func (c *Cluster) connectContext(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(parent, c.connectTimeout, ErrConnectTimeout)
}

// timedOut reports whether the connect timeout (not the caller's context)
// ended a connection attempt made with a connectContext.
func timedOut(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), ErrConnectTimeout)
}

// handshake runs the TLS client handshake on a new connection. A failure
// counts as a connect failure; the caller closes conn.
func (c *Cluster) handshake(ctx context.Context, tc *tlsctx.Client, conn net.Conn, addr string) (*tls.Conn, error) {
	out, err := tc.Handshake(ctx, conn)
	if err != nil {
		c.stats.CxConnectFail.Inc()
		if timedOut(ctx) {
			c.stats.CxConnectTimeout.Inc()
			return nil, fmt.Errorf("cluster %s: %s: %w: %w", c.name, addr, ErrConnectTimeout, err)
		}
		return nil, fmt.Errorf("cluster %s: %s: %w", c.name, addr, err)
	}
	return out, nil
}

// Transport returns the cluster's pooled HTTP transport: HTTP/1.1 with
// keep-alive, or HTTP/2 when the cluster sets http2_protocol_options (with
// prior knowledge in plaintext, negotiated by ALPN over TLS). The
// request's URL host must be an endpoint address from Pick and its scheme
// Scheme().
func (c *Cluster) Transport() *http.Transport { return c.transport }

// closeIdle releases the cluster's idle upstream connections. Requests in
// flight finish; their connections are closed once idle.
func (c *Cluster) closeIdle() {
	c.transport.CloseIdleConnections()
	c.h1.close()
}
