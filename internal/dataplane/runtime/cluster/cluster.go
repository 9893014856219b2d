// Package cluster implements trellis-dp's upstream clusters: their
// membership (EDS or STATIC load_assignment), round-robin load balancing
// over healthy endpoints, connection establishment with the cluster's
// connect timeout, and the pooled HTTP/1.1 or HTTP/2 (h2c) transport the
// HTTP proxy sends requests through.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
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
}

// Name returns the cluster's name.
func (c *Cluster) Name() string { return c.name }

// HTTP2 reports whether the upstream protocol is HTTP/2 (h2c).
func (c *Cluster) HTTP2() bool { return c.http2 }

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
// connect timeout, counting the attempt. The caller owns the connection and
// must call c.Stats().CxActive.Dec() after closing it.
func (c *Cluster) DialTCP(ctx context.Context) (*net.TCPConn, error) {
	addr, err := c.Pick()
	if err != nil {
		return nil, err
	}
	conn, err := c.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return conn.(*net.TCPConn), nil
}

// dial connects to addr, counting upstream_cx_total and the failures.
func (c *Cluster) dial(ctx context.Context, addr string) (net.Conn, error) {
	c.stats.CxTotal.Inc()
	d := net.Dialer{Timeout: c.connectTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		c.stats.CxConnectFail.Inc()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
			c.stats.CxConnectTimeout.Inc()
			return nil, fmt.Errorf("cluster %s: %s: %w", c.name, addr, ErrConnectTimeout)
		}
		return nil, fmt.Errorf("cluster %s: %w", c.name, err)
	}
	c.stats.CxActive.Inc()
	return conn, nil
}

// Transport returns the cluster's pooled HTTP transport: HTTP/1.1 with
// keep-alive, or HTTP/2 with prior knowledge (h2c) when the cluster sets
// http2_protocol_options. The request's URL host must be an endpoint
// address from Pick.
func (c *Cluster) Transport() *http.Transport { return c.transport }

// closeIdle releases the cluster's idle upstream connections. Requests in
// flight finish; their connections are closed once idle.
func (c *Cluster) closeIdle() { c.transport.CloseIdleConnections() }
