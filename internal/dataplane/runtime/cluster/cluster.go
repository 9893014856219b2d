// Package cluster implements trellis-dp's upstream clusters: their
// membership (EDS or STATIC load_assignment) with locality priorities,
// load balancing (lb_policy ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH,
// MAGLEV) over the hosts that active health checking and outlier
// detection keep in, circuit breakers, connection establishment with the
// cluster's connect timeout, the pool of HTTP/1.1 connections that the HTTP proxy's
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

	// Circuit breakers (see breaker.go for what pending means here).
	RqActive          *stats.Gauge
	RqPendingActive   *stats.Gauge
	RqPendingTotal    *stats.Counter
	RqPendingOverflow *stats.Counter
	CxOverflow        *stats.Counter
	RqRetryOverflow   *stats.Counter

	// RqTime is upstream_rq_time: each attempt that got a response, from
	// its start to the end of the response (Request.Done).
	RqTime *stats.Histogram
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
		RqActive:          sc.Gauge("upstream_rq_active"),
		RqPendingActive:   sc.Gauge("upstream_rq_pending_active"),
		RqPendingTotal:    sc.Counter("upstream_rq_pending_total"),
		RqPendingOverflow: sc.Counter("upstream_rq_pending_overflow"),
		CxOverflow:        sc.Counter("upstream_cx_overflow"),
		RqRetryOverflow:   sc.Counter("upstream_rq_retry_overflow"),
		RqTime:            sc.Histogram("upstream_rq_time"),
	}
	registerRetryStats(sc)
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
	originalDst    bool        // type ORIGINAL_DST (originaldst.go)
	bind           *bindConfig // upstream_bind_config (originaldst.go); nil: none
	http2          bool
	connectTimeout time.Duration
	stats          *Stats

	lb       balancer
	breaker  *breaker
	outlier  *outlierDetector // nil: no outlier_detection
	hc       *healthChecker   // nil: no health_checks
	protocol protocolOptions

	traffic   atomic.Bool   // a request was admitted (Begin) or picked
	trafficCh chan struct{} // closed once traffic is set

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
	if m := c.lb.members.Load(); m != nil {
		return m.eps
	}
	return nil
}

// MaxStreamDuration is common_http_protocol_options.max_stream_duration of
// the cluster's HttpProtocolOptions: the longest an upstream request may
// take, from its start to the end of its response (0: no limit). The HTTP
// proxy applies it per attempt like a route timeout (504 when it ends the
// request before a response, a reset after).
func (c *Cluster) MaxStreamDuration() time.Duration { return c.protocol.maxStreamDuration }

// IdleTimeout is common_http_protocol_options.idle_timeout: how long an
// upstream connection may stay without requests before it is closed (0:
// never).
func (c *Cluster) IdleTimeout() time.Duration { return c.protocol.idleTimeout }

// setEndpoints installs a new membership and starts or stops the health
// checking of the hosts that came or went.
func (c *Cluster) setEndpoints(eps []Endpoint) {
	m, st := c.lb.setMembers(eps, c.freshHost)
	c.updateMembership(st)
	if c.hc != nil {
		c.hc.sync(m.hosts)
	}
}

// freshHost prepares a host that just became a member: with active health
// checking it gets no traffic until its first check passes (as in Envoy;
// panic mode still sends traffic while all hosts are new).
func (c *Cluster) freshHost(h *host) {
	if c.hc != nil {
		h.hcFailed.Store(true)
	}
}

// healthChanged rebuilds the load balancer after a host's health checking
// or outlier status changed.
func (c *Cluster) healthChanged() { c.updateMembership(c.lb.rebuild()) }

func (c *Cluster) updateMembership(st viewStats) {
	c.stats.MembershipTotal.Set(int64(st.total))
	c.stats.MembershipHealthy.Set(int64(st.healthy))
}

// sawTraffic notes that the cluster is in use: health checks switch from
// no_traffic_interval to interval.
func (c *Cluster) sawTraffic() {
	if !c.traffic.Load() && c.traffic.CompareAndSwap(false, true) {
		close(c.trafficCh)
	}
}

// start runs the cluster's health checking and outlier detection; stop
// ends them. A cluster is started once its plan is committed and stopped
// when it is retired, so that a plan that is never committed leaves
// nothing running.
func (c *Cluster) start() {
	if c.outlier != nil {
		c.outlier.start()
	}
	if c.hc != nil {
		c.hc.start()
	}
}

func (c *Cluster) stop() {
	if c.outlier != nil {
		c.outlier.stop()
	}
	if c.hc != nil {
		c.hc.stop()
	}
}

// DialTCP picks an endpoint and connects to it within the cluster's
// connect timeout (TLS handshake included for a TLS cluster), counting the
// attempt. Circuit breakers apply as to every new connection (an error
// wrapping ErrOverflow when max_pending_requests is reached). The caller owns the connection and must call
// c.Stats().CxActive.Dec() after closing it. A plaintext connection is a
// *net.TCPConn.
func (c *Cluster) DialTCP(ctx context.Context) (net.Conn, error) {
	addr, err := c.Pick()
	if err != nil {
		return nil, err
	}
	return c.DialTCPAddr(ctx, addr)
}

// dial connects to addr before ctx ends, counting upstream_cx_total,
// upstream_cx_active and the failures.
//
// It waits for a slot under max_connections first (see breaker.go). The
// callers hold the attempt pending (beginPending) until the connection is
// ready, TLS handshake included.
func (c *Cluster) dial(ctx context.Context, addr string) (net.Conn, error) {
	return c.dialPooled(ctx, addr, "")
}

// dialPooled is dial for the HTTP/1.1 pool: while it waits for a slot,
// an idle pooled connection to idleAddr ends the wait with errIdleReturned
// (the caller takes that connection instead).
func (c *Cluster) dialPooled(ctx context.Context, addr, idleAddr string) (net.Conn, error) {
	if err := c.acquireConn(ctx, idleAddr); err != nil {
		return nil, err
	}
	defer c.releaseDial()
	c.stats.CxTotal.Inc()
	d := c.bind.dialer()
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
