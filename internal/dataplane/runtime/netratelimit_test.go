package runtime_test

import (
	"bufio"
	"io"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	netlocalratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/local_ratelimit/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestNetworkLocalRateLimit: a bucket of one connection per minute lets
// the first connection through tcp_proxy and closes the second.
func TestNetworkLocalRateLimit(t *testing.T) {
	backend := echoServer(t, "")
	rt := newRuntime(t)
	addr := freeAddr(t)
	l := tcpListener(t, addr, "echo")
	rl := &listenerv3.Filter{
		Name: "envoy.filters.network.local_ratelimit",
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, &netlocalratelimitv3.LocalRateLimit{
			StatPrefix: "inbound_echo",
			TokenBucket: &typev3.TokenBucket{MaxTokens: 1, TokensPerFill: wrapperspb.UInt32(1),
				FillInterval: durationpb.New(time.Minute)},
		})},
	}
	fc := l.GetFilterChains()[0]
	fc.Filters = append([]*listenerv3.Filter{rl}, fc.Filters...)
	apply(t, rt, configOf(l, edsCluster(t, "echo", false), cla("echo", backend)))

	first := dialEcho(t, addr)
	if got := roundTrip(t, first, bufio.NewReader(first), "hello"); got != "hello" {
		t.Fatalf("first connection: echo = %q", got)
	}
	second := dialEcho(t, addr)
	_, _ = io.WriteString(second, "again\n")
	n, err := second.Read(make([]byte, 16))
	if err == nil || isTimeout(err) {
		t.Fatalf("second connection: read %d bytes, %v; want it closed", n, err)
	}
	if got := rt.Stats()["local_ratelimit.inbound_echo.rate_limited"]; got != 1 {
		t.Errorf("local_ratelimit.inbound_echo.rate_limited = %d, want 1", got)
	}
	// The first connection is not affected.
	if got := roundTrip(t, first, bufio.NewReader(first), "still"); got != "still" {
		t.Fatalf("first connection after the limit: echo = %q", got)
	}
}

// TestNetworkLocalRateLimitHTTP: on an HTTP listener (served from the
// accept loop), the second connection within the interval is closed
// before any request is read; the first keeps working.
func TestNetworkLocalRateLimitHTTP(t *testing.T) {
	backend := idBackend(t, "a")
	rt := newRuntime(t)
	addr := freeAddr(t)
	l := httpListener(t, addr, "web")
	rl := &listenerv3.Filter{
		Name: "envoy.filters.network.local_ratelimit",
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, &netlocalratelimitv3.LocalRateLimit{
			StatPrefix:  "inbound_web",
			TokenBucket: &typev3.TokenBucket{MaxTokens: 1, FillInterval: durationpb.New(time.Minute)},
		})},
	}
	fc := l.GetFilterChains()[0]
	fc.Filters = append([]*listenerv3.Filter{rl}, fc.Filters...)
	apply(t, rt, configOf(l, routeConfig("web", nil), edsCluster(t, "web", false), cla("web", backend)))

	first := h1Client(t)
	if _, got := get(t, first, "http://"+addr+"/"); got != "a" {
		t.Fatalf("first connection: %q", got)
	}
	second := h1Client(t)
	if resp, err := second.Get("http://" + addr + "/"); err == nil {
		resp.Body.Close()
		t.Fatalf("second connection: status %d, want the connection closed", resp.StatusCode)
	}
	if _, got := get(t, first, "http://"+addr+"/"); got != "a" {
		t.Fatalf("first connection again: %q", got)
	}
	if got := rt.Stats()["local_ratelimit.inbound_web.rate_limited"]; got < 1 {
		t.Errorf("local_ratelimit.inbound_web.rate_limited = %d", got)
	}
}
