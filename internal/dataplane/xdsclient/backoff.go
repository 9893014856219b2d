package xdsclient

import (
	"math/rand/v2"
	"time"
)

// Default reconnect backoff: the delay before attempt n (counting from 0)
// is drawn uniformly from [0, min(max, base·2ⁿ)) ("full jitter"), so a
// fleet of proxies that lost the same control plane does not reconnect in
// lockstep.
const (
	DefaultBackoffBase = 250 * time.Millisecond
	DefaultBackoffMax  = 30 * time.Second
)

// backoff computes reconnect delays with exponential growth and full jitter.
type backoff struct {
	base, max time.Duration
	attempt   int
}

// next returns the delay before the next attempt and advances the attempt
// counter.
func (b *backoff) next() time.Duration {
	ceiling := b.max
	if b.attempt < 62 {
		if d := b.base << b.attempt; d > 0 && d < b.max {
			ceiling = d
		}
	}
	b.attempt++
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling)
}

// reset starts the sequence over; called once a stream has proved healthy.
func (b *backoff) reset() { b.attempt = 0 }
