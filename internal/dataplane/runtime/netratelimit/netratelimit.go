// Package netratelimit implements the envoy.filters.network.local_ratelimit
// network filter: a token bucket of connections. Each connection the
// filter chain accepts takes a token; a connection that finds the bucket
// empty is closed before the filters after it (tcp_proxy or the HTTP
// connection manager) see it, and counted in
// local_ratelimit.<stat_prefix>.rate_limited, as Envoy names it.
//
// The bucket belongs to one filter of one filter chain: a configuration
// update builds a new, full one (Envoy keeps a bucket across updates only
// with share_key, which trellis-dp does not implement).
package netratelimit

import (
	"errors"
	"fmt"
	"sync"
	"time"

	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/local_ratelimit/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/xdsutil"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// FilterName is the network filter's name.
const FilterName = "envoy.filters.network.local_ratelimit"

// minFillInterval is the shortest fill_interval Envoy accepts.
const minFillInterval = 50 * time.Millisecond

// Filter is a built network local rate limit filter, safe for concurrent
// use.
type Filter struct {
	mu       sync.Mutex
	tokens   uint64
	max      uint64
	perFill  uint64
	interval time.Duration
	last     time.Time // when the bucket was last filled

	rateLimited *stats.Counter
}

// New checks a LocalRateLimit and builds its filter with a full bucket.
func New(cfg *localratelimitv3.LocalRateLimit, reg stats.Registry) (*Filter, error) {
	if cfg.GetStatPrefix() == "" {
		return nil, errors.New("stat_prefix is required")
	}
	tb := cfg.GetTokenBucket()
	if tb == nil {
		return nil, errors.New("token_bucket is required")
	}
	if tb.GetMaxTokens() == 0 {
		return nil, errors.New("token_bucket.max_tokens must be positive")
	}
	interval, err := xdsutil.Duration(tb.GetFillInterval(), 0)
	if err != nil {
		return nil, fmt.Errorf("token_bucket.fill_interval: %w", err)
	}
	if interval < minFillInterval {
		return nil, fmt.Errorf("token_bucket.fill_interval must be at least %v", minFillInterval)
	}
	perFill := uint64(1)
	if v := tb.GetTokensPerFill(); v != nil {
		if v.GetValue() == 0 {
			return nil, errors.New("token_bucket.tokens_per_fill must be positive")
		}
		perFill = uint64(v.GetValue())
	}
	sc := stats.NewScope(reg, "local_ratelimit."+cfg.GetStatPrefix())
	return &Filter{
		tokens:      uint64(tb.GetMaxTokens()),
		max:         uint64(tb.GetMaxTokens()),
		perFill:     perFill,
		interval:    interval,
		last:        time.Now(),
		rateLimited: sc.Counter("rate_limited"),
	}, nil
}

// Allow takes a token for a new connection. It reports false, and counts
// the connection as rate limited, when there is none: the caller closes
// the connection.
func (f *Filter) Allow() bool {
	f.mu.Lock()
	now := time.Now()
	if fills := now.Sub(f.last) / f.interval; fills > 0 {
		if n := uint64(fills); n >= f.max {
			f.tokens = f.max
		} else {
			f.tokens = min(f.max, f.tokens+n*f.perFill)
		}
		f.last = f.last.Add(fills * f.interval)
	}
	ok := f.tokens > 0
	if ok {
		f.tokens--
	}
	f.mu.Unlock()
	if !ok {
		f.rateLimited.Inc()
	}
	return ok
}
