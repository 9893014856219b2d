package runtime_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime"
)

// These tests cover the HTTP proxy's resilience features (MeshTimeout,
// MeshRetry, MeshFaultInjection, MeshRateLimit) on both request paths:
// the HTTP/1.1 client goes through the fast path, the h2c client through
// net/http.

type pathClient struct {
	name string
	new  func(testing.TB) *http.Client
}

var bothPaths = []pathClient{{"fast path", h1Client}, {"net/http", h2cClient}}

// resilientProxy runs an outbound HTTP listener for service "web" with
// backends, the route edited by editRoute and the connection manager by
// editHCM (either may be nil).
func resilientProxy(t *testing.T, editRoute func(*routev3.RouteAction), editHCM func(*hcmv3.HttpConnectionManager), backends ...string) (string, *runtime.Runtime) {
	t.Helper()
	rt := newRuntime(t)
	addr := freeAddr(t)
	ln := httpListener(t, addr, "web")
	if editHCM != nil {
		h := hcm(t, "web")
		h.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "outbound:web", ConfigSource: adsSource()}}
		editHCM(h)
		ln.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, h)}
	}
	rc := routeConfig("web", nil)
	if editRoute != nil {
		editRoute(rc.VirtualHosts[0].Routes[0].GetRoute())
	}
	apply(t, rt, configOf(ln, rc, edsCluster(t, "web", false), cla("web", backends...)))
	return addr, rt
}

// withFilters puts HTTP filters before the router.
func withFilters(t *testing.T, filters map[string]proto.Message, order ...string) func(*hcmv3.HttpConnectionManager) {
	return func(h *hcmv3.HttpConnectionManager) {
		var fs []*hcmv3.HttpFilter
		for _, name := range order {
			fs = append(fs, &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, filters[name])}})
		}
		h.HttpFilters = append(fs, h.HttpFilters...)
	}
}

func percent100() *typev3.FractionalPercent {
	return &typev3.FractionalPercent{Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED}
}

func TestResilienceRouteTimeout(t *testing.T) {
	backend := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	addr, _ := resilientProxy(t, func(a *routev3.RouteAction) { a.Timeout = durationpb.New(500 * time.Millisecond) }, nil, backend)
	for _, pc := range bothPaths {
		start := time.Now()
		resp, body := get(t, pc.new(t), "http://"+addr+"/")
		took := time.Since(start)
		if resp.StatusCode != 504 || body != "upstream request timeout" {
			t.Fatalf("%s: got %d %q, want 504", pc.name, resp.StatusCode, body)
		}
		if took < 450*time.Millisecond || took > 1800*time.Millisecond {
			t.Errorf("%s: answered after %v, want about 0.5 s", pc.name, took)
		}
	}
}

// flaky answers 503 to two requests out of three (the first two of each
// three) and 200 with the request body to the third.
func flaky(t *testing.T, calls *atomic.Int64) string {
	return httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if calls.Add(1)%3 != 0 {
			w.WriteHeader(503)
			_, _ = io.WriteString(w, "try again")
			return
		}
		_, _ = w.Write(append([]byte("ok:"), b...))
	}))
}

func retryPolicy(on string, n uint32) func(*routev3.RouteAction) {
	return func(a *routev3.RouteAction) {
		a.RetryPolicy = &routev3.RetryPolicy{
			RetryOn:      on,
			NumRetries:   wrapperspb.UInt32(n),
			RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(5 * time.Millisecond)},
		}
	}
}

func TestResilienceRetries(t *testing.T) {
	var calls atomic.Int64
	addr, rt := resilientProxy(t, retryPolicy("5xx", 3), nil, flaky(t, &calls))
	for _, pc := range bothPaths {
		c := pc.new(t)
		for i := range 6 {
			resp, body := get(t, c, "http://"+addr+"/")
			if resp.StatusCode != 200 || body != "ok:" {
				t.Fatalf("%s: request %d: got %d %q", pc.name, i, resp.StatusCode, body)
			}
		}
		// A body is sent again with each attempt.
		for i := range 3 {
			payload := strings.Repeat("p", 100<<10+i)
			resp, err := c.Post("http://"+addr+"/", "text/plain", strings.NewReader(payload))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "ok:"+payload {
				t.Fatalf("%s: POST %d: got %d, %d bytes", pc.name, i, resp.StatusCode, len(b))
			}
		}
	}
	st := rt.Stats()
	if got := st["cluster.web.upstream_rq_retry"]; got != 36 {
		t.Errorf("upstream_rq_retry = %d, want 36", got)
	}
	if got := st["cluster.web.upstream_rq_retry_success"]; got != 18 {
		t.Errorf("upstream_rq_retry_success = %d, want 18", got)
	}
}

func TestResilienceRetriesExhausted(t *testing.T) {
	var calls atomic.Int64
	// One retry is not enough for a backend failing two requests of three.
	addr, _ := resilientProxy(t, retryPolicy("gateway-error", 1), nil, flaky(t, &calls))
	for _, pc := range bothPaths {
		calls.Store(0)
		resp, body := get(t, pc.new(t), "http://"+addr+"/")
		if resp.StatusCode != 503 || body != "try again" {
			t.Fatalf("%s: got %d %q, want the upstream's 503", pc.name, resp.StatusCode, body)
		}
		if got := calls.Load(); got != 2 {
			t.Errorf("%s: %d attempts, want 2", pc.name, got)
		}
	}
}

func TestResilienceRetryConnectFailure(t *testing.T) {
	dead := freeAddr(t)
	addr, _ := resilientProxy(t, retryPolicy("connect-failure", 2), nil, idBackend(t, "alive"), dead)
	for _, pc := range bothPaths {
		c := pc.new(t)
		for i := range 6 {
			resp, body := get(t, c, "http://"+addr+"/")
			if resp.StatusCode != 200 || body != "alive" {
				t.Fatalf("%s: request %d: got %d %q", pc.name, i, resp.StatusCode, body)
			}
		}
	}
}

func TestResiliencePerTryTimeout(t *testing.T) {
	var calls atomic.Int64
	backend := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%2 == 1 {
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
			return
		}
		_, _ = io.WriteString(w, "fast")
	}))
	addr, rt := resilientProxy(t, func(a *routev3.RouteAction) {
		retryPolicy("5xx", 2)(a)
		a.RetryPolicy.PerTryTimeout = durationpb.New(200 * time.Millisecond)
	}, nil, backend)
	for _, pc := range bothPaths {
		start := time.Now()
		resp, body := get(t, pc.new(t), "http://"+addr+"/")
		if resp.StatusCode != 200 || body != "fast" {
			t.Fatalf("%s: got %d %q", pc.name, resp.StatusCode, body)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s: took %v", pc.name, took)
		}
	}
	if got := rt.Stats()["cluster.web.upstream_rq_per_try_timeout"]; got != 2 {
		t.Errorf("upstream_rq_per_try_timeout = %d, want 2 (%v)", got, rt.Stats())
	}
}

func TestResilienceRateLimitedRetryBackOff(t *testing.T) {
	var calls atomic.Int64
	backend := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%2 == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	addr, _ := resilientProxy(t, func(a *routev3.RouteAction) {
		retryPolicy("retriable-status-codes", 1)(a)
		a.RetryPolicy.RetriableStatusCodes = []uint32{429}
		a.RetryPolicy.RateLimitedRetryBackOff = &routev3.RetryPolicy_RateLimitedRetryBackOff{
			ResetHeaders: []*routev3.RetryPolicy_ResetHeader{{Name: "retry-after", Format: routev3.RetryPolicy_SECONDS}},
		}
	}, nil, backend)
	for _, pc := range bothPaths {
		start := time.Now()
		resp, body := get(t, pc.new(t), "http://"+addr+"/")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("%s: got %d %q", pc.name, resp.StatusCode, body)
		}
		if took := time.Since(start); took < time.Second {
			t.Errorf("%s: retried after %v, want the Retry-After second", pc.name, took)
		}
	}
}

func TestResilienceStreamIdleTimeout(t *testing.T) {
	stall := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/part" {
			w.Header().Set("Content-Length", "10")
			_, _ = io.WriteString(w, "half")
			w.(http.Flusher).Flush()
		}
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	}))
	addr, _ := resilientProxy(t, func(a *routev3.RouteAction) {
		a.Timeout = durationpb.New(0)
		a.IdleTimeout = durationpb.New(300 * time.Millisecond)
	}, nil, stall)
	for _, pc := range bothPaths {
		start := time.Now()
		resp, body := get(t, pc.new(t), "http://"+addr+"/")
		if resp.StatusCode != 504 || body != "stream timeout" {
			t.Fatalf("%s: got %d %q, want 504 stream timeout", pc.name, resp.StatusCode, body)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s: took %v", pc.name, took)
		}
		resp, err := pc.new(t).Get("http://" + addr + "/part")
		if err != nil {
			continue // cut before the head went down (HTTP/2 buffers it)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "half" || err == nil {
			t.Errorf("%s: body %q, %v: want the response cut", pc.name, b, err)
		}
	}
}

func TestResilienceFaultAbortAndDelay(t *testing.T) {
	backend := idBackend(t, "b")
	abort := &faultv3.HTTPFault{Abort: &faultv3.FaultAbort{
		ErrorType:  &faultv3.FaultAbort_HttpStatus{HttpStatus: 418},
		Percentage: percent100(),
	}}
	addr, _ := resilientProxy(t, nil, withFilters(t, map[string]proto.Message{"envoy.filters.http.fault": abort}, "envoy.filters.http.fault"), backend)
	for _, pc := range bothPaths {
		c := pc.new(t)
		for range 3 {
			resp, _ := get(t, c, "http://"+addr+"/")
			if resp.StatusCode != 418 {
				t.Fatalf("%s: got %d, want the injected 418", pc.name, resp.StatusCode)
			}
		}
	}

	delay := &faultv3.HTTPFault{Delay: &faultcommonv3.FaultDelay{
		FaultDelaySecifier: &faultcommonv3.FaultDelay_FixedDelay{FixedDelay: durationpb.New(300 * time.Millisecond)},
		Percentage:         &typev3.FractionalPercent{Numerator: 1_000_000, Denominator: typev3.FractionalPercent_MILLION},
	}}
	addr, _ = resilientProxy(t, nil, withFilters(t, map[string]proto.Message{"envoy.filters.http.fault": delay}, "envoy.filters.http.fault"), backend)
	for _, pc := range bothPaths {
		start := time.Now()
		resp, body := get(t, pc.new(t), "http://"+addr+"/")
		if resp.StatusCode != 200 || body != "b" {
			t.Fatalf("%s: got %d %q", pc.name, resp.StatusCode, body)
		}
		if took := time.Since(start); took < 300*time.Millisecond {
			t.Errorf("%s: answered after %v, want the 300 ms delay", pc.name, took)
		}
	}

	// 0 %: nothing happens.
	none := &faultv3.HTTPFault{Abort: &faultv3.FaultAbort{
		ErrorType:  &faultv3.FaultAbort_HttpStatus{HttpStatus: 500},
		Percentage: &typev3.FractionalPercent{Numerator: 0, Denominator: typev3.FractionalPercent_TEN_THOUSAND},
	}}
	addr, _ = resilientProxy(t, nil, withFilters(t, map[string]proto.Message{"envoy.filters.http.fault": none}, "envoy.filters.http.fault"), backend)
	for _, pc := range bothPaths {
		if resp, _ := get(t, pc.new(t), "http://"+addr+"/"); resp.StatusCode != 200 {
			t.Fatalf("%s: got %d", pc.name, resp.StatusCode)
		}
	}
}

func TestResilienceFaultResponseRateLimit(t *testing.T) {
	payload := bytes.Repeat([]byte("x"), 16<<10)
	backend := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(payload) }))
	slow := &faultv3.HTTPFault{ResponseRateLimit: &faultcommonv3.FaultRateLimit{
		LimitType:  &faultcommonv3.FaultRateLimit_FixedLimit_{FixedLimit: &faultcommonv3.FaultRateLimit_FixedLimit{LimitKbps: 16}},
		Percentage: percent100(),
	}}
	addr, _ := resilientProxy(t, nil, withFilters(t, map[string]proto.Message{"envoy.filters.http.fault": slow}, "envoy.filters.http.fault"), backend)
	for _, pc := range bothPaths {
		start := time.Now()
		resp, body := get(t, pc.new(t), "http://"+addr+"/")
		if resp.StatusCode != 200 || body != string(payload) {
			t.Fatalf("%s: got %d, %d bytes", pc.name, resp.StatusCode, len(body))
		}
		if took := time.Since(start); took < 700*time.Millisecond {
			t.Errorf("%s: 16 KiB at 16 KiB/s took %v, want about a second", pc.name, took)
		}
	}
}

func localRateLimit(perSecond uint32) *localratelimitv3.LocalRateLimit {
	return &localratelimitv3.LocalRateLimit{
		StatPrefix: "rl",
		TokenBucket: &typev3.TokenBucket{
			MaxTokens:     perSecond,
			TokensPerFill: wrapperspb.UInt32(perSecond),
			FillInterval:  durationpb.New(time.Second),
		},
		FilterEnabled:  &corev3.RuntimeFractionalPercent{DefaultValue: percent100()},
		FilterEnforced: &corev3.RuntimeFractionalPercent{DefaultValue: percent100()},
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{{
			Header:       &corev3.HeaderValue{Key: "x-kuma-rate-limited", Value: "true"},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}},
	}
}

func TestResilienceLocalRateLimit(t *testing.T) {
	backend := idBackend(t, "b")
	for _, pc := range bothPaths {
		addr, rt := resilientProxy(t, nil, withFilters(t, map[string]proto.Message{
			"envoy.filters.http.local_ratelimit": localRateLimit(10),
		}, "envoy.filters.http.local_ratelimit"), backend)
		c := pc.new(t)
		ok, limited := 0, 0
		for range 15 {
			resp, body := get(t, c, "http://"+addr+"/")
			switch {
			case resp.StatusCode == 200:
				ok++
			case resp.StatusCode == 429 && body == "local_rate_limited" && resp.Header.Get("X-Kuma-Rate-Limited") == "true":
				limited++
			default:
				t.Fatalf("%s: got %d %q %v", pc.name, resp.StatusCode, body, resp.Header)
			}
		}
		// 10 tokens, and at most one refill if the loop spans a second.
		if ok < 10 || ok > 15 || limited < 1 && ok < 15 {
			t.Errorf("%s: %d passed, %d limited", pc.name, ok, limited)
		}
		if limited == 0 {
			t.Errorf("%s: nothing was rate limited", pc.name)
		}
		if got := rt.Stats()["rl.http_local_rate_limit.rate_limited"]; got != uint64(limited) {
			t.Errorf("%s: rate_limited = %d, want %d", pc.name, got, limited)
		}
	}
}

func TestResilienceMaxConnectionDuration(t *testing.T) {
	backend := idBackend(t, "b")
	addr, _ := resilientProxy(t, nil, func(h *hcmv3.HttpConnectionManager) {
		h.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{MaxConnectionDuration: durationpb.New(300 * time.Millisecond)}
	}, backend)
	c := dialRaw(t, addr)
	c.send(t, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
	if resp, _ := c.read(t, "GET"); resp.StatusCode != 200 || resp.Close {
		t.Fatalf("first request: %d, close %v", resp.StatusCode, resp.Close)
	}
	time.Sleep(400 * time.Millisecond)
	if !c.closed() {
		t.Fatal("the connection outlived max_connection_duration")
	}
}

func TestResilienceConnIdleTimeout(t *testing.T) {
	backend := idBackend(t, "b")
	addr, _ := resilientProxy(t, nil, func(h *hcmv3.HttpConnectionManager) {
		h.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{IdleTimeout: durationpb.New(300 * time.Millisecond)}
	}, backend)
	c := dialRaw(t, addr)
	c.send(t, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
	if resp, _ := c.read(t, "GET"); resp.StatusCode != 200 {
		t.Fatalf("got %d", resp.StatusCode)
	}
	start := time.Now()
	if !c.closed() {
		t.Fatal("the idle connection was not closed")
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("closed after %v, want about 300 ms", took)
	}
}

func TestResilienceRequestHeadersTimeout(t *testing.T) {
	backend := idBackend(t, "b")
	addr, _ := resilientProxy(t, nil, func(h *hcmv3.HttpConnectionManager) {
		h.RequestHeadersTimeout = durationpb.New(300 * time.Millisecond)
	}, backend)
	for _, first := range []bool{true, false} {
		c := dialRaw(t, addr)
		if !first {
			c.send(t, "GET / HTTP/1.1\r\nHost: web\r\n\r\n")
			if resp, _ := c.read(t, "GET"); resp.StatusCode != 200 {
				t.Fatalf("got %d", resp.StatusCode)
			}
		}
		c.send(t, "GET / HTTP/1.1\r\nHost: web\r\n")
		resp, body := c.read(t, "GET")
		if resp.StatusCode != 408 || body != "request headers timeout" {
			t.Fatalf("first request %v: got %d %q", first, resp.StatusCode, body)
		}
		if !c.closed() {
			t.Errorf("first request %v: the connection stayed open", first)
		}
	}
}

func TestResilienceMaxStreamDuration(t *testing.T) {
	backend := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	}))
	addr, _ := resilientProxy(t, func(a *routev3.RouteAction) { a.Timeout = durationpb.New(0) }, func(h *hcmv3.HttpConnectionManager) {
		h.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{MaxStreamDuration: durationpb.New(300 * time.Millisecond)}
	}, backend)
	for _, pc := range bothPaths {
		start := time.Now()
		resp, body := get(t, pc.new(t), "http://"+addr+"/")
		if resp.StatusCode != 504 || body != "downstream duration timeout" {
			t.Fatalf("%s: got %d %q", pc.name, resp.StatusCode, body)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s: took %v", pc.name, took)
		}
	}
}

var _ = net.Dial

func TestResilienceCircuitBreakerOverflow(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 4)
	backend := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "done")
	}))
	rt := newRuntime(t)
	addr := freeAddr(t)
	cl := edsCluster(t, "web", false)
	cl.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
		MaxRequests: wrapperspb.UInt32(1),
	}}}
	apply(t, rt, configOf(httpListener(t, addr, "web"), routeConfig("web", nil), cl, cla("web", backend)))
	for _, pc := range bothPaths {
		// The previous path's request must have released its slot.
		deadline := time.Now().Add(10 * time.Second)
		for rt.Stats()["cluster.web.upstream_rq_active"] != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the previous request still holds the slot", pc.name)
			}
			time.Sleep(5 * time.Millisecond)
		}
		c := pc.new(t)
		first := make(chan string, 1)
		go func() {
			resp, err := c.Get("http://" + addr + "/")
			if err != nil {
				first <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			first <- string(b)
		}()
		// Wait for the first request to hold the only slot (it is at the
		// backend).
		select {
		case <-arrived:
		case got := <-first:
			t.Fatalf("%s: first request answered before reaching the backend: %q", pc.name, got)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the first request did not reach the backend", pc.name)
		}
		resp, body := get(t, pc.new(t), "http://"+addr+"/")
		if resp.StatusCode != 503 || resp.Header.Get("X-Envoy-Overloaded") != "true" || !strings.Contains(body, "overflow") {
			t.Fatalf("%s: got %d %q %v, want the 503 overflow", pc.name, resp.StatusCode, body, resp.Header)
		}
		select {
		case release <- struct{}{}:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the backend is not holding the first request", pc.name)
		}
		if got := <-first; got != "done" {
			t.Fatalf("%s: first request: %q", pc.name, got)
		}
	}
}

// TestResilienceRetriesWithinRouteTimeout: the route timeout covers the
// retries and their back-off.
func TestResilienceRetriesWithinRouteTimeout(t *testing.T) {
	backend := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(503)
	}))
	addr, _ := resilientProxy(t, func(a *routev3.RouteAction) {
		retryPolicy("5xx", 3)(a)
		a.Timeout = durationpb.New(500 * time.Millisecond)
		a.RetryPolicy.RateLimitedRetryBackOff = &routev3.RetryPolicy_RateLimitedRetryBackOff{
			ResetHeaders: []*routev3.RetryPolicy_ResetHeader{{Name: "Retry-After"}},
		}
	}, nil, backend)
	for _, pc := range bothPaths {
		start := time.Now()
		resp, body := get(t, pc.new(t), "http://"+addr+"/")
		if resp.StatusCode != 504 || body != "upstream request timeout" {
			t.Fatalf("%s: got %d %q, want 504", pc.name, resp.StatusCode, body)
		}
		if took := time.Since(start); took < 450*time.Millisecond || took > 2*time.Second {
			t.Errorf("%s: answered after %v, want about 0.5 s", pc.name, took)
		}
	}
}

func TestResilienceGRPCRetryOn(t *testing.T) {
	var calls atomic.Int64
	backend := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		if calls.Add(1)%3 != 0 {
			w.Header().Set("Grpc-Status", "14") // trailers-only UNAVAILABLE
			return
		}
		w.Header().Set("Grpc-Status", "0")
		_, _ = io.WriteString(w, "ok")
	}))
	addr, _ := resilientProxy(t, retryPolicy("cancelled,deadline-exceeded,internal,resource-exhausted,unavailable", 3), nil, backend)
	for _, pc := range bothPaths {
		for i := range 3 {
			resp, err := pc.new(t).Post("http://"+addr+"/svc/Method", "application/grpc", strings.NewReader("\x00\x00\x00\x00\x02hi"))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.Header.Get("Grpc-Status") != "0" || string(b) != "ok" {
				t.Fatalf("%s: call %d: grpc-status %q, %q", pc.name, i, resp.Header.Get("Grpc-Status"), b)
			}
		}
	}
}

// TestResilienceRetryPicksAgain: a retry picks an endpoint again, so a
// failing endpoint next to a healthy one costs no request.
func TestResilienceRetryPicksAgain(t *testing.T) {
	bad := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) }))
	addr, _ := resilientProxy(t, retryPolicy("gateway-error", 1), nil, bad, idBackend(t, "good"))
	for _, pc := range bothPaths {
		c := pc.new(t)
		for i := range 8 {
			resp, body := get(t, c, "http://"+addr+"/")
			if resp.StatusCode != 200 || body != "good" {
				t.Fatalf("%s: request %d: got %d %q", pc.name, i, resp.StatusCode, body)
			}
		}
	}
}
