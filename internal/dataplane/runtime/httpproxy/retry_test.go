package httpproxy

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func mustRetryPolicy(t *testing.T, p *routev3.RetryPolicy) *retryPolicy {
	t.Helper()
	rp, err := compileRetryPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

func TestRetryPolicyDefaults(t *testing.T) {
	rp := mustRetryPolicy(t, &routev3.RetryPolicy{RetryOn: "5xx"})
	if rp.numRetries != 1 || rp.base != 25*time.Millisecond || rp.max != 250*time.Millisecond || rp.perTry != 0 {
		t.Fatalf("got %+v, want Envoy's defaults", rp)
	}
	rp = mustRetryPolicy(t, &routev3.RetryPolicy{RetryOn: "5xx", NumRetries: wrapperspb.UInt32(0)})
	if rp.numRetries != 0 {
		t.Fatalf("num_retries 0: got %d", rp.numRetries)
	}
}

func TestRetryPolicyRejects(t *testing.T) {
	for name, p := range map[string]*routev3.RetryPolicy{
		"retry_on":   {RetryOn: "5xx,envoy-ratelimited"},
		"back-off":   {RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(time.Second), MaxInterval: durationpb.New(time.Millisecond)}},
		"zero base":  {RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(0)}},
		"status":     {RetriableStatusCodes: []uint32{999}},
		"reset name": {RateLimitedRetryBackOff: &routev3.RetryPolicy_RateLimitedRetryBackOff{ResetHeaders: []*routev3.RetryPolicy_ResetHeader{{}}}},
		"no resets":  {RateLimitedRetryBackOff: &routev3.RetryPolicy_RateLimitedRetryBackOff{}},
		"header":     {RetriableHeaders: []*routev3.HeaderMatcher{{Name: "x"}}},
	} {
		if _, err := compileRetryPolicy(p); err == nil {
			t.Errorf("%s: compiled, want an error", name)
		}
	}
}

func TestRetriableStatus(t *testing.T) {
	hdr := func(kv ...string) request {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return netHeader(h)
	}
	for _, tc := range []struct {
		on     string
		codes  []uint32
		status int
		h      request
		want   bool
	}{
		{"5xx", nil, 500, hdr(), true},
		{"5xx", nil, 404, hdr(), false},
		{"gateway-error", nil, 500, hdr(), false},
		{"gateway-error", nil, 503, hdr(), true},
		{"retriable-4xx", nil, 409, hdr(), true},
		{"retriable-4xx", nil, 429, hdr(), false},
		{"retriable-status-codes", []uint32{429}, 429, hdr(), true},
		{"5xx", []uint32{429}, 429, hdr(), false}, // codes need their condition
		{"retriable-headers", nil, 200, hdr("X-Retry", "yes"), true},
		{"retriable-headers", nil, 200, hdr("X-Other", "yes"), false},
		{"unavailable", nil, 200, hdr("Grpc-Status", "14"), true},
		{"cancelled,internal", nil, 200, hdr("Grpc-Status", "14"), false},
		{"deadline-exceeded", nil, 200, hdr("Grpc-Status", "4"), true},
		{"resource-exhausted", nil, 200, hdr("Grpc-Status", "8"), true},
		{"internal", nil, 200, hdr("Grpc-Status", "13"), true},
		{"cancelled", nil, 200, hdr("Grpc-Status", "1"), true},
		{"unavailable", nil, 200, hdr(), false},
	} {
		rp := mustRetryPolicy(t, &routev3.RetryPolicy{
			RetryOn:              tc.on,
			RetriableStatusCodes: tc.codes,
			RetriableHeaders:     []*routev3.HeaderMatcher{{Name: "x-retry", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}}},
		})
		if got := rp.retriableStatus(tc.status, tc.h); got != tc.want {
			t.Errorf("%s, %d, %v: got %v", tc.on, tc.status, tc.h, got)
		}
	}
}

func TestRetriableFailure(t *testing.T) {
	for _, tc := range []struct {
		on   string
		f    attemptFailure
		want bool
	}{
		{"5xx", failReset, true},
		{"gateway-error", failConnect, true},
		{"reset", failPerTryTimeout, true},
		{"connect-failure", failConnect, true},
		{"connect-failure", failReset, false},
		{"refused-stream", failRefusedStream, true},
		{"refused-stream", failReset, false},
		{"retriable-4xx", failReset, false},
	} {
		if got := mustRetryPolicy(t, &routev3.RetryPolicy{RetryOn: tc.on}).retriableFailure(tc.f); got != tc.want {
			t.Errorf("%s, %d: got %v", tc.on, tc.f, got)
		}
	}
}

func TestRetryRequestHeaders(t *testing.T) {
	rp := mustRetryPolicy(t, &routev3.RetryPolicy{RetryOn: "5xx", RetriableRequestHeaders: []*routev3.HeaderMatcher{{
		Name:                 ":method",
		HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "GET"}}},
	}}})
	get := &h1Request{meth: "GET"}
	post := &h1Request{meth: "POST"}
	if !rp.requestAllowed(get, "/") || rp.requestAllowed(post, "/") {
		t.Fatal("retriable_request_headers :method GET should allow GET only")
	}
}

func TestBackOff(t *testing.T) {
	rp := mustRetryPolicy(t, &routev3.RetryPolicy{
		RetryOn:      "5xx",
		RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(10 * time.Millisecond), MaxInterval: durationpb.New(50 * time.Millisecond)},
		RateLimitedRetryBackOff: &routev3.RetryPolicy_RateLimitedRetryBackOff{
			ResetHeaders: []*routev3.RetryPolicy_ResetHeader{
				{Name: "Retry-After", Format: routev3.RetryPolicy_SECONDS},
				{Name: "X-RateLimit-Reset", Format: routev3.RetryPolicy_UNIX_TIMESTAMP},
			},
			MaxInterval: durationpb.New(10 * time.Second),
		},
	})
	for range 200 {
		if d := rp.backOff(1, nil); d < 0 || d >= 10*time.Millisecond {
			t.Fatalf("first back-off %v, want [0, base)", d)
		}
		if d := rp.backOff(2, nil); d < 0 || d >= 30*time.Millisecond {
			t.Fatalf("second back-off %v, want [0, 3 base)", d)
		}
		if d := rp.backOff(8, nil); d < 0 || d >= 50*time.Millisecond {
			t.Fatalf("eighth back-off %v, want [0, max)", d)
		}
	}
	h := func(kv ...string) request {
		hh := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			hh.Set(kv[i], kv[i+1])
		}
		return netHeader(hh)
	}
	if d := rp.backOff(1, h("Retry-After", "2")); d < 2*time.Second || d >= 3*time.Second {
		t.Errorf("Retry-After 2: %v, want [2 s, 3 s)", d)
	}
	at := strconv.FormatInt(time.Now().Add(5*time.Second).Unix(), 10)
	if d := rp.backOff(1, h("X-RateLimit-Reset", at)); d < 3*time.Second || d > 8*time.Second {
		t.Errorf("X-RateLimit-Reset in 5 s: %v", d)
	}
	// Beyond max_interval, or not a number: the next header, then the
	// exponential back-off.
	if d := rp.backOff(1, h("Retry-After", "60", "X-RateLimit-Reset", "junk")); d >= 10*time.Millisecond {
		t.Errorf("Retry-After 60 over a 10 s max: %v, want the exponential back-off", d)
	}
}

func TestPercent(t *testing.T) {
	never, always := percent{0, 100}, percent{100, 100}
	half := percent{500_000, 1_000_000}
	n := 0
	for range 2000 {
		if never.hit() || !always.hit() {
			t.Fatal("0 % hit or 100 % missed")
		}
		if half.hit() {
			n++
		}
	}
	if n < 800 || n > 1200 {
		t.Errorf("50 %%: %d hits of 2000", n)
	}
}

func TestTokenBucket(t *testing.T) {
	start := time.Now()
	b := tokenBucket{tokens: 3, max: 3, perFill: 2, interval: time.Second, last: start}
	for i := range 3 {
		if !b.take(start) {
			t.Fatalf("token %d refused", i)
		}
	}
	if b.take(start.Add(999 * time.Millisecond)) {
		t.Fatal("a fourth token before the fill")
	}
	if !b.take(start.Add(time.Second)) || !b.take(start.Add(time.Second)) || b.take(start.Add(time.Second)) {
		t.Fatal("a fill adds tokens_per_fill tokens")
	}
	if !b.take(start.Add(10*time.Second)) || b.tokens != 2 {
		t.Fatalf("many fills stop at max_tokens: %d left", b.tokens)
	}
}

func TestReplayBody(t *testing.T) {
	src := strings.NewReader("hello world")
	b := &replayBody{src: readCloser{src}, size: 11}
	first := b.reader()
	p := make([]byte, 5)
	if n, _ := first.Read(p); string(p[:n]) != "hello" {
		t.Fatalf("read %q", p[:n])
	}
	// The attempt stopped reading: the rest is read for the retry.
	if !b.replayable() {
		t.Fatal("not replayable")
	}
	buf := new(strings.Builder)
	r := b.reader()
	if _, err := ioCopy(buf, r); err != nil || buf.String() != "hello world" {
		t.Fatalf("replay %q, %v", buf, err)
	}
}
