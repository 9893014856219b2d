package netratelimit_test

import (
	"strings"
	"testing"
	"time"

	netlocalratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/local_ratelimit/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/netratelimit"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

func bucket(max, perFill uint32, interval time.Duration) *netlocalratelimitv3.LocalRateLimit {
	tb := &typev3.TokenBucket{MaxTokens: max, FillInterval: durationpb.New(interval)}
	if perFill > 0 {
		tb.TokensPerFill = wrapperspb.UInt32(perFill)
	}
	return &netlocalratelimitv3.LocalRateLimit{StatPrefix: "in", TokenBucket: tb}
}

func TestBucket(t *testing.T) {
	reg := stats.NewStore()
	const interval = 300 * time.Millisecond
	f, err := netratelimit.New(bucket(2, 1, interval), reg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !f.Allow() || !f.Allow() {
		t.Fatal("a full bucket of 2 refused one of the first 2 connections")
	}
	if f.Allow() && time.Since(start) < interval {
		t.Fatal("the 3rd connection within the interval was allowed")
	}
	if got := reg.Counter("local_ratelimit.in.rate_limited").Value(); got != 1 {
		t.Errorf("local_ratelimit.in.rate_limited = %d, want 1", got)
	}
	time.Sleep(interval + 50*time.Millisecond)
	if !f.Allow() {
		t.Fatal("no token after a fill interval")
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		cfg  *netlocalratelimitv3.LocalRateLimit
		want string
	}{
		{&netlocalratelimitv3.LocalRateLimit{TokenBucket: bucket(1, 1, time.Second).TokenBucket}, "stat_prefix is required"},
		{&netlocalratelimitv3.LocalRateLimit{StatPrefix: "x"}, "token_bucket is required"},
		{bucket(0, 1, time.Second), "max_tokens must be positive"},
		{bucket(1, 1, 10*time.Millisecond), "fill_interval must be at least"},
	} {
		if _, err := netratelimit.New(tc.cfg, stats.NewStore()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
