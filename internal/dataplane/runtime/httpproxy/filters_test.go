package httpproxy

import (
	"io"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	faultcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

type readCloser struct{ io.Reader }

func (readCloser) Close() error { return nil }

func ioCopy(w io.Writer, r io.Reader) (int64, error) { return io.Copy(w, r) }

func TestFaultCompile(t *testing.T) {
	ff, err := compileFault(&faultv3.HTTPFault{
		Abort: &faultv3.FaultAbort{ErrorType: &faultv3.FaultAbort_HttpStatus{HttpStatus: 503},
			Percentage: &typev3.FractionalPercent{Numerator: 25, Denominator: typev3.FractionalPercent_TEN_THOUSAND}},
		Delay: &faultcommonv3.FaultDelay{FaultDelaySecifier: &faultcommonv3.FaultDelay_FixedDelay{FixedDelay: durationpb.New(time.Second)},
			Percentage: &typev3.FractionalPercent{Numerator: 100}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ff.abortStatus != 503 || ff.abortPercent != (percent{25, 10_000}) || ff.delay != time.Second || ff.delayPercent != (percent{100, 100}) {
		t.Fatalf("got %+v", ff)
	}
	var v verdict
	ff = &faultFilter{abortStatus: 418, abortPercent: percent{1, 1}, delay: time.Second, delayPercent: percent{1, 1}}
	ff.apply(&v)
	if v.status != 418 || v.delay != time.Second {
		t.Fatalf("verdict %+v", v)
	}
	for name, f := range map[string]*faultv3.HTTPFault{
		"grpc abort": {Abort: &faultv3.FaultAbort{ErrorType: &faultv3.FaultAbort_GrpcStatus{GrpcStatus: 14}}},
		"status":     {Abort: &faultv3.FaultAbort{ErrorType: &faultv3.FaultAbort_HttpStatus{HttpStatus: 99}}},
		"header delay": {Delay: &faultcommonv3.FaultDelay{
			FaultDelaySecifier: &faultcommonv3.FaultDelay_HeaderDelay_{HeaderDelay: &faultcommonv3.FaultDelay_HeaderDelay{}}}},
		"zero kbps": {ResponseRateLimit: &faultcommonv3.FaultRateLimit{
			LimitType: &faultcommonv3.FaultRateLimit_FixedLimit_{FixedLimit: &faultcommonv3.FaultRateLimit_FixedLimit{}}}},
	} {
		if _, err := compileFault(f); err == nil {
			t.Errorf("%s: compiled, want an error", name)
		}
	}
}

func TestLocalRateLimitCompile(t *testing.T) {
	reg := stats.NewStore()
	tb := &typev3.TokenBucket{MaxTokens: 2, FillInterval: durationpb.New(time.Second)}
	l, err := compileLocalRateLimit(&localratelimitv3.LocalRateLimit{StatPrefix: "p", TokenBucket: tb}, reg)
	if err != nil {
		t.Fatal(err)
	}
	// filter_enabled unset: disabled, as Envoy.
	for range 5 {
		var v verdict
		if l.apply(&v); v.status != 0 {
			t.Fatal("a disabled filter limited a request")
		}
	}
	full := &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 100}}
	none := &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 0}}
	l, err = compileLocalRateLimit(&localratelimitv3.LocalRateLimit{StatPrefix: "shadow", TokenBucket: tb, FilterEnabled: full, FilterEnforced: none}, reg)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		var v verdict
		if l.apply(&v); v.status != 0 {
			t.Fatal("a filter enforced for 0 % limited a request")
		}
	}
	if got := reg.Snapshot()["shadow.http_local_rate_limit.rate_limited"]; got != 3 {
		t.Errorf("rate_limited = %d, want 3 counted, not enforced", got)
	}
	l, err = compileLocalRateLimit(&localratelimitv3.LocalRateLimit{StatPrefix: "e", TokenBucket: tb, FilterEnabled: full, FilterEnforced: full,
		Status: &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable}}, reg)
	if err != nil {
		t.Fatal(err)
	}
	var v verdict
	l.apply(&v)
	l.apply(&v)
	if v.status != 0 {
		t.Fatal("limited within the bucket")
	}
	if l.apply(&v); v.status != 503 || v.body != "local_rate_limited" {
		t.Fatalf("got %+v", v)
	}
	for name, c := range map[string]*localratelimitv3.LocalRateLimit{
		"stat_prefix": {TokenBucket: tb},
		"bucket":      {StatPrefix: "x"},
		"interval":    {StatPrefix: "x", TokenBucket: &typev3.TokenBucket{MaxTokens: 1, FillInterval: durationpb.New(time.Millisecond)}},
		"status":      {StatPrefix: "x", TokenBucket: tb, Status: &typev3.HttpStatus{Code: typev3.StatusCode_OK}},
		"header":      {StatPrefix: "x", TokenBucket: tb, ResponseHeadersToAdd: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "bad key"}}}},
	} {
		if _, err := compileLocalRateLimit(c, reg); err == nil {
			t.Errorf("%s: compiled, want an error", name)
		}
	}
}

func TestHCMTimeoutsDefaults(t *testing.T) {
	ts, err := compileHCMTimeouts(&hcmv3.HttpConnectionManager{})
	if err != nil {
		t.Fatal(err)
	}
	if ts.connIdleSet || ts.connIdle != time.Hour || ts.streamIdle != 5*time.Minute || ts.maxConn != 0 || ts.maxStream != 0 || ts.requestHeaders != 0 {
		t.Fatalf("got %+v, want Envoy's defaults", ts)
	}
	ts, err = compileHCMTimeouts(&hcmv3.HttpConnectionManager{
		CommonHttpProtocolOptions: &corev3.HttpProtocolOptions{IdleTimeout: durationpb.New(0)},
		StreamIdleTimeout:         durationpb.New(0),
	})
	if err != nil || !ts.connIdleSet || ts.connIdle != 0 || ts.streamIdle != 0 {
		t.Fatalf("zero disables: got %+v, %v", ts, err)
	}
}

func TestDeadlines(t *testing.T) {
	now := time.Now()
	dl := deadlines{route: now.Add(time.Second), perTry: now.Add(200 * time.Millisecond), idle: 500 * time.Millisecond}
	if at, k := dl.next(now); k != dlPerTry || !at.Equal(dl.perTry) {
		t.Fatalf("next: %v %v", at, k)
	}
	if at, k := dl.overall(); k != dlRoute || !at.Equal(dl.route) {
		t.Fatalf("overall: %v %v", at, k)
	}
	if k := dl.fired(dlIdle, now.Add(300*time.Millisecond)); k != dlPerTry {
		t.Fatalf("fired: %v", k)
	}
	dl.perTry = time.Time{}
	if _, k := dl.next(now); k != dlIdle {
		t.Fatalf("idle first: %v", k)
	}
	if s, b := timeoutReply(dlIdle); s != 504 || !strings.Contains(b, "stream timeout") {
		t.Fatalf("%d %q", s, b)
	}
}
