package cluster

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// The per-request interface between the HTTP proxy and a cluster: hash
// based endpoint choice (route hash_policy with RING_HASH or MAGLEV),
// circuit breakers (admission) and outlier detection (outcomes).
//
// The HTTP proxy calls, for every upstream attempt (the first try and each
// retry):
//
//	req, err := c.Begin(retry)      // ErrOverflow: answer 503, count overflow
//	addr, err := c.PickHash(key, hasKey)
//	... exchange (GetH1/PutH1 or Transport) ...
//	req.Done(addr, Outcome{...})
//
// The TCP proxy calls Begin(false)/Done for each connection attempt too
// (Status 0), with the address of the connection DialTCP made
// (conn.RemoteAddr().String()).
//
// Connection-level limits surface in the exchange: GetH1, DialTCP and the
// Transport's dials fail with an error wrapping ErrOverflow when
// max_pending_requests attempts already wait for a connection, and with
// one wrapping ErrConnectTimeout when no connection slot frees under
// max_connections within connect_timeout. Answer those like a Begin
// overflow (503, x-envoy-overloaded: true) and a connect timeout.

// ErrOverflow says a circuit breaker of the cluster refused the request
// (max_requests, max_pending_requests or max_retries reached); the proxy
// answers 503 with the x-envoy-overloaded header, as Envoy does.
var ErrOverflow = errors.New("circuit breaker overflow")

// ErrRetryOverflow is the ErrOverflow of Begin(true) under max_retries
// (errors.Is(ErrRetryOverflow, ErrOverflow) holds). Envoy does not answer
// 503 then: the retry is not made and the proxy returns the answer of the
// last attempt, counting upstream_rq_retry_overflow (done by Begin).
var ErrRetryOverflow = fmt.Errorf("max_retries: %w", ErrOverflow)

// Outcome is how one upstream attempt ended, for outlier detection.
type Outcome struct {
	// Status is the HTTP status of the response, 0 when there was none.
	Status int
	// Err is the transport error of an attempt without a response
	// (connect failure, reset, timeout).
	Err error
	// LocalOrigin says Err happened on this side (connect failure, timeout,
	// reset before the response) rather than being an upstream answer.
	LocalOrigin bool
	// Duration is how long the attempt took.
	Duration time.Duration
}

// Request is one admitted upstream attempt; Done releases it.
type Request struct {
	c     *Cluster
	retry bool
	done  atomic.Bool
}

// Begin admits one upstream attempt (retry: a retry of an earlier one) or
// returns ErrOverflow when a circuit breaker is open: max_requests attempts
// in flight (upstream_rq_pending_overflow, Envoy's counter for it) or, for
// a retry, max_retries retries in flight (ErrRetryOverflow,
// upstream_rq_retry_overflow). The caller must call Done on the returned
// Request exactly once (later calls do nothing).
func (c *Cluster) Begin(retry bool) (*Request, error) {
	b := c.breaker
	if b.rq.Add(1) > b.maxRq {
		b.rq.Add(-1)
		c.stats.RqPendingOverflow.Inc()
		return nil, fmt.Errorf("cluster %s: max_requests %d: %w", c.name, b.maxRq, ErrOverflow)
	}
	if retry {
		if b.retries.Add(1) > b.maxRetries {
			b.retries.Add(-1)
			b.rq.Add(-1)
			c.stats.RqRetryOverflow.Inc()
			return nil, fmt.Errorf("cluster %s: max_retries %d: %w", c.name, b.maxRetries, ErrRetryOverflow)
		}
	}
	c.stats.RqActive.Inc()
	c.sawTraffic()
	return &Request{c: c, retry: retry}, nil
}

// Done reports the outcome of the attempt sent to addr ("" when none was
// picked) and releases it: the host's active request count (least
// request) goes down, and outlier detection records the outcome (not that
// of an attempt a circuit breaker stopped: GetH1, DialTCP or Transport
// failing with ErrOverflow or for want of a connection slot).
func (r *Request) Done(addr string, o Outcome) {
	if !r.done.CompareAndSwap(false, true) {
		return
	}
	c := r.c
	c.breaker.rq.Add(-1)
	if r.retry {
		c.breaker.retries.Add(-1)
	}
	c.stats.RqActive.Dec()
	if o.Status != 0 {
		c.stats.RqTime.RecordDuration(o.Duration)
	}
	if addr == "" {
		return
	}
	h := c.lb.host(addr)
	if h == nil {
		return // no longer a member
	}
	for {
		n := h.active.Load()
		if n <= 0 || h.active.CompareAndSwap(n, n-1) {
			break
		}
	}
	if c.outlier != nil && !breakerError(o.Err) {
		c.outlier.record(h, o)
	}
}

// breakerError reports whether an attempt failed on a circuit breaker of
// this side, which says nothing about the host.
func breakerError(err error) bool {
	return err != nil && (errors.Is(err, ErrOverflow) || errors.Is(err, errNoSlot))
}

// PickHash picks an endpoint for a request whose hash_policy produced key
// (hasKey false: the route has no hash policy or no input was present).
// Hash-based load balancers (RING_HASH, MAGLEV) map equal keys to the same
// endpoint while the set of hosts that get traffic is unchanged; the
// others ignore key. Each picked address must be reported with
// Request.Done (least request counts it as active until then).
func (c *Cluster) PickHash(key uint64, hasKey bool) (string, error) {
	c.sawTraffic()
	if v := c.lb.view.Load(); v != nil {
		if h := v.pick(key, hasKey); h != nil {
			h.active.Add(1)
			return h.addr, nil
		}
	}
	c.stats.CxNoneHealthy.Inc()
	return "", ErrNoHealthyUpstream
}

// Pick returns the address of an endpoint chosen by the cluster's
// lb_policy among the hosts that get traffic (a random key for the hash
// policies), or ErrNoHealthyUpstream (and counts it). Like PickHash, its
// result is to be reported with Request.Done.
func (c *Cluster) Pick() (string, error) { return c.PickHash(0, false) }

// HashBased reports whether the cluster's lb_policy (RING_HASH or MAGLEV)
// uses the key given to PickHash; the proxy may skip computing a route's
// hash_policy for the other clusters.
func (c *Cluster) HashBased() bool {
	return c.lb.cfg.policy == policyRingHash || c.lb.cfg.policy == policyMaglev
}
