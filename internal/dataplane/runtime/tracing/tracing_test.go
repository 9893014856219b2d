package tracing

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tracingv3 "github.com/envoyproxy/go-control-plane/envoy/type/tracing/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

func getter(h map[string]string) Getter {
	return func(n string) (string, bool) { v, ok := h[n]; return v, ok }
}

const (
	tid  = "4bf92f3577b34da6a3ce929d0e0e4736"
	sid  = "00f067aa0ba902b7"
	psid = "a2fb4a1d1a96d312"
)

func TestExtract(t *testing.T) {
	cases := []struct {
		name    string
		h       map[string]string
		ok      bool
		sampled Sampling
		trace   string
		span    string
	}{
		{"traceparent", map[string]string{"traceparent": "00-" + tid + "-" + sid + "-01"}, true, SamplingYes, tid, sid},
		{"traceparent unsampled", map[string]string{"traceparent": "00-" + tid + "-" + sid + "-00"}, true, SamplingNo, tid, sid},
		{"traceparent uppercase hex", map[string]string{"traceparent": "00-" + strings.ToUpper(tid) + "-" + sid + "-01"}, true, SamplingYes, tid, sid},
		{"traceparent future version", map[string]string{"traceparent": "01-" + tid + "-" + sid + "-01-extra"}, true, SamplingYes, tid, sid},
		{"b3 single", map[string]string{"b3": tid + "-" + sid + "-1-" + psid}, true, SamplingYes, tid, sid},
		{"b3 single no sampling", map[string]string{"b3": tid + "-" + sid}, true, SamplingUnset, tid, sid},
		{"b3 single 64-bit", map[string]string{"b3": "a3ce929d0e0e4736-" + sid + "-d"}, true, SamplingYes, "0000000000000000a3ce929d0e0e4736", sid},
		{"b3 multi", map[string]string{"x-b3-traceid": tid, "x-b3-spanid": sid, "x-b3-sampled": "1", "x-b3-parentspanid": psid}, true, SamplingYes, tid, sid},
		{"b3 multi debug", map[string]string{"x-b3-traceid": tid, "x-b3-spanid": sid, "x-b3-flags": "1"}, true, SamplingYes, tid, sid},
		{"bad traceparent falls back to b3", map[string]string{"traceparent": "00-xyz", "x-b3-traceid": tid, "x-b3-spanid": sid}, true, SamplingUnset, tid, sid},
		// Malformed headers are ignored.
		{"version ff", map[string]string{"traceparent": "ff-" + tid + "-" + sid + "-01"}, false, SamplingUnset, "", ""},
		{"zero trace id", map[string]string{"traceparent": "00-" + strings.Repeat("0", 32) + "-" + sid + "-01"}, false, SamplingUnset, "", ""},
		{"zero span id", map[string]string{"traceparent": "00-" + tid + "-" + strings.Repeat("0", 16) + "-01"}, false, SamplingUnset, "", ""},
		{"version 00 with extra", map[string]string{"traceparent": "00-" + tid + "-" + sid + "-01-x"}, false, SamplingUnset, "", ""},
		{"non-hex", map[string]string{"traceparent": "00-" + strings.Repeat("g", 32) + "-" + sid + "-01"}, false, SamplingUnset, "", ""},
		{"short", map[string]string{"traceparent": "00-" + tid[:30] + "-" + sid + "-01"}, false, SamplingUnset, "", ""},
		{"b3 too many parts", map[string]string{"b3": tid + "-" + sid + "-1-" + psid + "-x"}, false, SamplingUnset, "", ""},
		{"b3 bad sampling", map[string]string{"b3": tid + "-" + sid + "-x"}, false, SamplingUnset, "", ""},
		{"b3 deny only", map[string]string{"b3": "0"}, false, SamplingNo, "", ""},
		{"b3 multi span id short", map[string]string{"x-b3-traceid": tid, "x-b3-spanid": "abc", "x-b3-sampled": "0"}, false, SamplingNo, "", ""},
		{"nothing", map[string]string{}, false, SamplingUnset, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc, ok := Extract(getter(c.h))
			if ok != c.ok || sc.Sampled != c.sampled {
				t.Fatalf("ok %v sampled %v, want %v %v (%+v)", ok, sc.Sampled, c.ok, c.sampled, sc)
			}
			if ok && (sc.TraceID.String() != c.trace || sc.SpanID.String() != c.span) {
				t.Fatalf("ids %s %s", sc.TraceID, sc.SpanID)
			}
		})
	}
}

func TestInject(t *testing.T) {
	sc, _ := Extract(getter(map[string]string{"b3": tid + "-" + sid + "-1-" + psid}))
	got := map[string]string{}
	Inject(sc, func(n, v string) { got[n] = v })
	want := map[string]string{
		"traceparent": "00-" + tid + "-" + sid + "-01", "x-b3-traceid": tid, "x-b3-spanid": sid,
		"x-b3-parentspanid": psid, "x-b3-sampled": "1", "b3": tid + "-" + sid + "-1-" + psid,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	// A 64-bit id stays 16 digits in B3; round trip.
	sc, _ = Extract(getter(map[string]string{"x-b3-traceid": "a3ce929d0e0e4736", "x-b3-spanid": sid, "x-b3-sampled": "0"}))
	got = map[string]string{}
	Inject(sc, func(n, v string) { got[n] = v })
	if got["x-b3-traceid"] != "a3ce929d0e0e4736" || got["x-b3-sampled"] != "0" || !strings.HasSuffix(got["traceparent"], "-00") {
		t.Errorf("got %v", got)
	}
	if _, single := got["b3"]; single {
		t.Errorf("b3 single header from a multi-header context")
	}
	for _, h := range []string{"Traceparent", "B3", "X-B3-TraceId", "x-b3-sampled", "X-B3-Flags"} {
		if !IsPropagationHeader(h) {
			t.Errorf("%s is a propagation header", h)
		}
	}
	for _, h := range []string{"tracestate", "x-request-id", "b", "content-type"} {
		if IsPropagationHeader(h) {
			t.Errorf("%s is not a propagation header", h)
		}
	}
}

func tracingConfig(t *testing.T, provider *tracev3.Tracing_Http, overall, client, random float64) *hcmv3.HttpConnectionManager_Tracing {
	return &hcmv3.HttpConnectionManager_Tracing{
		OverallSampling: &typev3.Percent{Value: overall}, ClientSampling: &typev3.Percent{Value: client}, RandomSampling: &typev3.Percent{Value: random},
		CustomTags: []*tracingv3.CustomTag{
			{Tag: "lit", Type: &tracingv3.CustomTag_Literal_{Literal: &tracingv3.CustomTag_Literal{Value: "v"}}},
			{Tag: "hdr", Type: &tracingv3.CustomTag_RequestHeader{RequestHeader: &tracingv3.CustomTag_Header{Name: "X-Team", DefaultValue: "none"}}},
		},
		Provider: provider,
	}
}

func zipkinProvider(t *testing.T) *tracev3.Tracing_Http {
	a, err := anypb.New(&tracev3.ZipkinConfig{CollectorCluster: "z", CollectorEndpoint: "/api/v2/spans", CollectorEndpointVersion: tracev3.ZipkinConfig_HTTP_JSON, TraceId_128Bit: true})
	if err != nil {
		t.Fatal(err)
	}
	return &tracev3.Tracing_Http{Name: "envoy.tracers.zipkin", ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: a}}
}

func TestSampling(t *testing.T) {
	resolve := func(string) (string, error) { return "127.0.0.1:1", nil }
	count := func(overall, client, random float64, h map[string]string) int {
		tr, err := Build(tracingConfig(t, zipkinProvider(t), overall, client, random), KindServer, "s", resolve, stats.NewStore())
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range 2000 {
			if tr.Start(getter(h), time.Now()).Sampled() {
				n++
			}
		}
		return n
	}
	if n := count(100, 100, 100, nil); n != 2000 {
		t.Errorf("100%%: %d", n)
	}
	if n := count(100, 100, 0, nil); n != 0 {
		t.Errorf("random 0%%: %d", n)
	}
	if n := count(100, 100, 50, nil); n < 700 || n > 1300 {
		t.Errorf("random 50%%: %d of 2000", n)
	}
	if n := count(0, 100, 100, nil); n != 0 {
		t.Errorf("overall 0%%: %d", n)
	}
	if n := count(100, 100, 0, map[string]string{"x-client-trace-id": "1"}); n != 2000 {
		t.Errorf("client sampling: %d", n)
	}
	// An upstream decision wins over random sampling.
	if n := count(100, 100, 0, map[string]string{"traceparent": "00-" + tid + "-" + sid + "-01"}); n != 2000 {
		t.Errorf("sampled upstream: %d", n)
	}
	if n := count(100, 100, 100, map[string]string{"x-b3-sampled": "0"}); n != 0 {
		t.Errorf("unsampled upstream: %d", n)
	}
}

// Spans reach a Zipkin collector as v2 JSON, the server span a child of
// the incoming context.
func TestZipkinExport(t *testing.T) {
	got := make(chan []map[string]any, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var spans []map[string]any
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/api/v2/spans" || json.Unmarshal(b, &spans) != nil {
			http.Error(w, string(b), 400)
			return
		}
		got <- spans
		w.WriteHeader(202)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	reg := stats.NewStore()
	tr, err := Build(tracingConfig(t, zipkinProvider(t), 100, 100, 100), KindServer, "backend", func(c string) (string, error) { return addr, nil }, reg)
	if err != nil {
		t.Fatal(err)
	}
	sp := tr.Start(getter(map[string]string{"traceparent": "00-" + tid + "-" + sid + "-01", "x-team": "core"}), time.Now())
	sp.Finish(&Result{Method: "GET", Authority: "backend", Path: "/x?y", Status: 503, UpstreamCluster: "local"}, time.Now().Add(time.Millisecond))
	select {
	case spans := <-got:
		s := spans[0]
		tags := s["tags"].(map[string]any)
		if s["traceId"] != tid || s["parentId"] != sid || s["kind"] != "SERVER" || s["name"] != "backend/x" ||
			s["localEndpoint"].(map[string]any)["serviceName"] != "backend" || tags["hdr"] != "core" || tags["lit"] != "v" ||
			tags["http.status_code"] != "503" || tags["error"] != "true" {
			t.Fatalf("span %v", s)
		}
		if s["id"] != sp.Context.SpanID.String() || s["id"] == sid {
			t.Fatalf("span id %v", s["id"])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no spans")
	}
}

func TestOTLPJSON(t *testing.T) {
	sc, _ := Extract(getter(map[string]string{"traceparent": "00-" + tid + "-" + sid + "-01"}))
	b := otlpJSON([]*finished{{ctx: sc, parent: SpanID{1}, name: "n", kind: KindClient, start: time.Unix(2, 0), duration: time.Second, service: "web", tags: []Tag{{"error", "true"}}}})
	var v struct {
		ResourceSpans []struct {
			Resource   struct{ Attributes []struct{ Key string } }
			ScopeSpans []struct {
				Spans []struct {
					TraceID, SpanID, ParentSpanID, StartTimeUnixNano, EndTimeUnixNano string
					Kind                                                              int
					Status                                                            struct{ Code int }
				}
			}
		}
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	s := v.ResourceSpans[0].ScopeSpans[0].Spans[0]
	if s.TraceID != tid || s.SpanID != sid || s.ParentSpanID != "0100000000000000" || s.Kind != 3 || s.StartTimeUnixNano != "2000000000" || s.EndTimeUnixNano != "3000000000" || s.Status.Code != 2 {
		t.Fatalf("%s", b)
	}
}

func TestBuildErrors(t *testing.T) {
	resolve := func(string) (string, error) { return "127.0.0.1:1", nil }
	proto := func(m *tracev3.ZipkinConfig) *tracev3.Tracing_Http {
		a, _ := anypb.New(m)
		return &tracev3.Tracing_Http{Name: "z", ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: a}}
	}
	cases := map[string]*hcmv3.HttpConnectionManager_Tracing{
		"provider is required":            {},
		"HTTP_JSON only":                  {Provider: proto(&tracev3.ZipkinConfig{CollectorEndpointVersion: tracev3.ZipkinConfig_HTTP_PROTO})},
		"overall_sampling: 101":           {OverallSampling: &typev3.Percent{Value: 101}, Provider: zipkinProvider(t)},
		"only literal and request_header": {CustomTags: []*tracingv3.CustomTag{{Tag: "x"}}, Provider: zipkinProvider(t)},
	}
	for want, cfg := range cases {
		if _, err := Build(cfg, KindClient, "", resolve, stats.NewStore()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

// FuzzExtract: any header values extract without panicking, and what is
// extracted injects and extracts back to the same ids.
func FuzzExtract(f *testing.F) {
	f.Add("00-"+tid+"-"+sid+"-01", tid+"-"+sid+"-1", tid, sid)
	f.Add("", "0", "", "")
	f.Fuzz(func(t *testing.T, traceparent, b3, b3t, b3s string) {
		sc, ok := Extract(getter(map[string]string{"traceparent": traceparent, "b3": b3, "x-b3-traceid": b3t, "x-b3-spanid": b3s}))
		if !ok {
			return
		}
		h := map[string]string{}
		Inject(sc, func(n, v string) { h[n] = v })
		back, ok := Extract(getter(h))
		if !ok || back.TraceID != sc.TraceID || back.SpanID != sc.SpanID {
			t.Fatalf("%+v -> %v -> %+v", sc, h, back)
		}
	})
}
