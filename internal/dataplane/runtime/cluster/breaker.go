package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// Envoy's circuit breaker defaults, in force for a cluster without
// circuit_breakers and for an unset field of thresholds[0].
const (
	defaultMaxConnections     = 1024
	defaultMaxPendingRequests = 1024
	defaultMaxRequests        = 1024
	defaultMaxRetries         = 3
)

// errNoSlot marks an attempt that got no connection slot under
// max_connections: the breaker's doing, not the host's (outlier detection
// ignores it, as it ignores ErrOverflow).
var errNoSlot = errors.New("no connection slot")

// errIdleReturned ends the wait for a connection slot of an HTTP/1.1
// attempt when a connection to its endpoint became idle in the pool: it
// goes on that connection instead of closing it to make a new one.
var errIdleReturned = errors.New("an idle connection was returned to the pool")

// slotPoll bounds how long an attempt waiting for a connection slot sleeps
// between looks: slots freed by a TCP proxy connection closing are not
// signalled (the proxy decrements upstream_cx_active itself).
const slotPoll = 20 * time.Millisecond

// breaker is a cluster's circuit breaker (thresholds[0], priority
// DEFAULT) and its counts.
//
// Pending, for trellis-dp's pools, is an upstream attempt that has no
// connection to go on yet: it found no idle pooled connection and is
// waiting for a connection slot (max_connections reached) or for its new
// connection to be ready (TCP connect and, for a TLS cluster, the TLS
// handshake). An attempt that takes an idle pooled
// connection is never pending. This is Envoy's meaning: a request queued
// in the connection pool until a connection is ready for it.
type breaker struct {
	maxCx, maxPending, maxRq, maxRetries int64

	rq      atomic.Int64 // admitted attempts (Begin .. Done)
	retries atomic.Int64 // admitted retries
	pending atomic.Int64 // attempts without a connection yet
	dialing atomic.Int64 // connections being established

	mu   sync.Mutex
	wake chan struct{} // closed when a connection slot may have freed
}

// parseBreaker reads circuit_breakers.thresholds[0].
func parseBreaker(cb *clusterv3.CircuitBreakers) (*breaker, error) {
	b := &breaker{
		maxCx:      defaultMaxConnections,
		maxPending: defaultMaxPendingRequests,
		maxRq:      defaultMaxRequests,
		maxRetries: defaultMaxRetries,
		wake:       make(chan struct{}),
	}
	th := cb.GetThresholds()
	switch {
	case len(th) == 0:
		return b, nil
	case len(th) > 1:
		return nil, errors.New("circuit_breakers.thresholds: only one threshold (priority DEFAULT) is supported")
	case th[0].GetPriority() != corev3.RoutingPriority_DEFAULT:
		return nil, fmt.Errorf("circuit_breakers.thresholds[0].priority %s is not supported (DEFAULT only)", th[0].GetPriority())
	}
	t := th[0]
	if v := t.GetMaxConnections(); v != nil {
		b.maxCx = int64(v.GetValue())
	}
	if v := t.GetMaxPendingRequests(); v != nil {
		b.maxPending = int64(v.GetValue())
	}
	if v := t.GetMaxRequests(); v != nil {
		b.maxRq = int64(v.GetValue())
	}
	if v := t.GetMaxRetries(); v != nil {
		b.maxRetries = int64(v.GetValue())
	}
	return b, nil
}

// signal wakes the attempts waiting for a connection slot.
func (b *breaker) signal() {
	b.mu.Lock()
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}

func (b *breaker) waitChan() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wake
}

// beginPending admits an attempt into the pending state before it gets a
// new connection, or refuses it when max_pending_requests attempts are
// already pending (upstream_rq_pending_overflow). The caller calls
// endPending once the attempt has a connection or has failed.
func (c *Cluster) beginPending() error {
	b := c.breaker
	if b.pending.Add(1) > b.maxPending {
		b.pending.Add(-1)
		c.stats.RqPendingOverflow.Inc()
		return fmt.Errorf("cluster %s: max_pending_requests %d: %w", c.name, b.maxPending, ErrOverflow)
	}
	c.stats.RqPendingTotal.Inc()
	c.stats.RqPendingActive.Inc()
	return nil
}

func (c *Cluster) endPending() {
	c.breaker.pending.Add(-1)
	c.stats.RqPendingActive.Dec()
}

// acquireConn reserves a slot for a new upstream connection under
// max_connections, counted against upstream_cx_active and the connections
// being established. At the limit it counts upstream_cx_overflow once,
// closes an idle pooled connection when there is one (idle connections do
// not hold back work), else waits until a slot frees or ctx ends. The
// caller calls releaseDial when the dial is over (success or not).
func (c *Cluster) acquireConn(ctx context.Context, idleAddr string) error {
	b := c.breaker
	overflowed := false
	for {
		if b.dialing.Add(1)+c.stats.CxActive.Value() <= b.maxCx {
			return nil
		}
		b.dialing.Add(-1)
		if !overflowed {
			overflowed = true
			c.stats.CxOverflow.Inc()
		}
		if idleAddr != "" && c.h1.hasIdle(idleAddr) {
			return errIdleReturned
		}
		if c.h1.closeOldestIdle() {
			continue
		}
		c.transport.CloseIdleConnections()
		wake := b.waitChan()
		t := time.NewTimer(slotPoll)
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if timedOut(ctx) {
				return fmt.Errorf("cluster %s: %w under max_connections %d: %w", c.name, errNoSlot, b.maxCx, ErrConnectTimeout)
			}
			return fmt.Errorf("cluster %s: %w: %w", c.name, errNoSlot, context.Cause(ctx))
		}
		t.Stop()
	}
}

// releaseDial ends a dial reserved with acquireConn; a successful one is
// now counted in upstream_cx_active.
func (c *Cluster) releaseDial() { c.breaker.dialing.Add(-1) }

// connClosed is called when a counted upstream connection closes: a slot
// is free for an attempt waiting under max_connections.
func (c *Cluster) connClosed() {
	if c.breaker.dialing.Load() > 0 || c.breaker.pending.Load() > 0 {
		c.breaker.signal()
	}
}
