package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// zipkinSpan is a Zipkin v2 span as the receiver reads it.
type zipkinSpan struct {
	TraceID       string                       `json:"traceId"`
	ID            string                       `json:"id"`
	ParentID      string                       `json:"parentId"`
	Kind          string                       `json:"kind"`
	Name          string                       `json:"name"`
	Timestamp     int64                        `json:"timestamp"`
	Duration      int64                        `json:"duration"`
	LocalEndpoint struct{ ServiceName string } `json:"localEndpoint"`
	Tags          map[string]string            `json:"tags"`
}

// zipkinReceiver is a Zipkin-compatible collector: POST /api/v2/spans
// with a JSON list of spans.
type zipkinReceiver struct {
	url   string
	mu    sync.Mutex
	spans []zipkinSpan
}

func startZipkin(t *testing.T) *zipkinReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z := &zipkinReceiver{url: "http://" + ln.Addr().String() + "/api/v2/spans"}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v2/spans" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		var spans []zipkinSpan
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &spans); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		z.mu.Lock()
		z.spans = append(z.spans, spans...)
		z.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return z
}

func (z *zipkinReceiver) withTag(key, value string) []zipkinSpan {
	z.mu.Lock()
	defer z.mu.Unlock()
	var out []zipkinSpan
	for _, s := range z.spans {
		if s.Tags[key] == value {
			out = append(out, s)
		}
	}
	return out
}

// MeshTrace with a Zipkin backend: one request through the client's and
// the backend's sidecars gives a client span and a server span of one
// trace, the server span a child of the client span, and the app gets
// the server span's context (W3C traceparent and B3). A request that
// comes with a B3 context continues its trace.
func TestTracingZipkin(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})
	app := startTestApp(t, "backend-1")
	startDP(t, cp, "backend-1", serviceDP(t, "backend-1", "backend", "http", app.port))
	out := freePort(t)
	startDP(t, cp, "frontend-1", clientDP(t, "frontend-1", map[int]string{out: "backend"}))
	z := startZipkin(t)
	applyYAML(t, cp, fmt.Sprintf(`type: MeshTrace
name: zipkin
mesh: default
spec:
  targetRef: {kind: Mesh}
  default:
    backends:
    - type: Zipkin
      zipkin: {url: %q, traceId128bit: true}
    tags:
    - {name: test.id, header: {name: x-test-id}}
    - {name: team, literal: mesh}
`, z.url))
	c := newClient()
	url := fmt.Sprintf("http://127.0.0.1:%d/", out)
	within(t, cp, "frontend-1", 20*time.Second, "spans at the receiver", func() error {
		if _, err := request(c, http.MethodGet, url, "X-Test-Id", "warmup"); err != nil {
			return err
		}
		time.Sleep(700 * time.Millisecond)
		if len(z.withTag("test.id", "warmup")) < 2 {
			return fmt.Errorf("no spans yet")
		}
		return nil
	})

	var got appAnswer
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("X-Test-Id", "one")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var client, server zipkinSpan
	eventually(t, 5*time.Second, "the client and server spans of the request", func() error {
		spans := z.withTag("test.id", "one")
		if len(spans) != 2 {
			return fmt.Errorf("%d spans: %+v", len(spans), spans)
		}
		for _, s := range spans {
			switch s.Kind {
			case "CLIENT":
				client = s
			case "SERVER":
				server = s
			}
		}
		if client.ID == "" || server.ID == "" {
			return fmt.Errorf("want a CLIENT and a SERVER span: %+v", spans)
		}
		return nil
	})
	if client.TraceID != server.TraceID || len(client.TraceID) != 32 {
		t.Errorf("trace ids %q and %q", client.TraceID, server.TraceID)
	}
	if server.ParentID != client.ID || client.ParentID != "" {
		t.Errorf("server span's parent %q, client span %q (parent %q)", server.ParentID, client.ID, client.ParentID)
	}
	if client.LocalEndpoint.ServiceName != "frontend-1" || server.LocalEndpoint.ServiceName != "backend" {
		t.Errorf("services %q and %q", client.LocalEndpoint.ServiceName, server.LocalEndpoint.ServiceName)
	}
	for _, s := range []zipkinSpan{client, server} {
		if s.Tags["http.status_code"] != "200" || s.Tags["team"] != "mesh" || s.Tags["http.method"] != "GET" || s.Duration <= 0 {
			t.Errorf("%s span tags %v duration %d", s.Kind, s.Tags, s.Duration)
		}
	}
	want := "00-" + server.TraceID + "-" + server.ID + "-01"
	if tp := strings.Join(got.Headers["Traceparent"], ","); tp != want {
		t.Errorf("the app got traceparent %q, want %q", tp, want)
	}
	if b3 := strings.Join(got.Headers["X-B3-Spanid"], ","); b3 != server.ID {
		t.Errorf("the app got x-b3-spanid %q, want %q", b3, server.ID)
	}

	// An incoming B3 context: the client sidecar's span continues it.
	const traceID, parent = "463ac35c9f6413ad48485a3953bb6124", "a2fb4a1d1a96d312"
	if _, err := request(c, http.MethodGet, url, "X-Test-Id", "b3", "X-B3-TraceId", traceID, "X-B3-SpanId", parent, "X-B3-Sampled", "1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the spans of a B3 request", func() error {
		spans := z.withTag("test.id", "b3")
		if len(spans) != 2 {
			return fmt.Errorf("%d spans", len(spans))
		}
		for _, s := range spans {
			if s.TraceID != traceID || s.Kind == "CLIENT" && s.ParentID != parent {
				return fmt.Errorf("span %+v", s)
			}
		}
		return nil
	})
	// The net/http path (an HTTP/1.0 request) traces the same way.
	netHTTP10(t, out, "h10")
	eventually(t, 5*time.Second, "the spans of an HTTP/1.0 request", func() error {
		spans := z.withTag("test.id", "h10")
		if len(spans) != 2 || spans[0].TraceID != spans[1].TraceID || spans[0].ParentID != spans[1].ID && spans[1].ParentID != spans[0].ID {
			return fmt.Errorf("spans %+v", spans)
		}
		return nil
	})
	// Not sampled upstream: no spans.
	if _, err := request(c, http.MethodGet, url, "X-Test-Id", "unsampled", "traceparent", "00-"+traceID+"-"+parent+"-00"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if spans := z.withTag("test.id", "unsampled"); len(spans) != 0 {
		t.Errorf("spans of an unsampled request: %+v", spans)
	}
	noNacks(t, cp)
}

// otlpReceiver is an OTLP/HTTP JSON collector: POST /v1/traces and
// /v1/logs; it keeps the spans' (traceId, spanId, parentSpanId, kind,
// service) and the log records' bodies.
type otlpReceiver struct {
	addr  string
	mu    sync.Mutex
	spans []otlpSpan
	logs  []string
}

type otlpSpan struct {
	TraceID, SpanID, ParentSpanID, Service string
	Kind                                   int
}

func startOTLP(t *testing.T) *otlpReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &otlpReceiver{addr: ln.Addr().String()}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(o.serve)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return o
}

func (o *otlpReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch r.URL.Path {
	case "/v1/traces":
		var req struct {
			ResourceSpans []struct {
				Resource struct {
					Attributes []struct {
						Key   string
						Value struct{ StringValue string }
					}
				}
				ScopeSpans []struct{ Spans []otlpSpan }
			}
		}
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		o.mu.Lock()
		for _, rs := range req.ResourceSpans {
			svc := ""
			for _, a := range rs.Resource.Attributes {
				if a.Key == "service.name" {
					svc = a.Value.StringValue
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					s.Service = svc
					o.spans = append(o.spans, s)
				}
			}
		}
		o.mu.Unlock()
	case "/v1/logs":
		var req struct {
			ResourceLogs []struct {
				ScopeLogs []struct {
					LogRecords []struct{ Body struct{ StringValue string } }
				}
			}
		}
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		o.mu.Lock()
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, rec := range sl.LogRecords {
					o.logs = append(o.logs, rec.Body.StringValue)
				}
			}
		}
		o.mu.Unlock()
	default:
		http.NotFound(w, r)
	}
}

// MeshTrace and MeshAccessLog with OpenTelemetry backends: spans of both
// sidecars with one trace id, and one log record per request, reach an
// OTLP/HTTP collector.
func TestOpenTelemetryBackends(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})
	app := startTestApp(t, "backend-1")
	startDP(t, cp, "backend-1", serviceDP(t, "backend-1", "backend", "http", app.port))
	out := freePort(t)
	startDP(t, cp, "frontend-1", clientDP(t, "frontend-1", map[int]string{out: "backend"}))
	o := startOTLP(t)
	applyYAML(t, cp, fmt.Sprintf(`type: MeshTrace
name: otel
mesh: default
spec:
  targetRef: {kind: Mesh}
  default:
    backends:
    - type: OpenTelemetry
      openTelemetry: {endpoint: %q}
---
type: MeshAccessLog
name: otel
mesh: default
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Mesh}
    default:
      backends:
      - type: OpenTelemetry
        openTelemetry: {endpoint: %q, body: "%%KUMA_SOURCE_SERVICE%%>%%KUMA_DESTINATION_SERVICE%% %%RESPONSE_CODE%% %%REQ(X-REQUEST-ID)%%"}
`, o.addr, o.addr))
	c := newClient()
	url := fmt.Sprintf("http://127.0.0.1:%d/", out)
	within(t, cp, "frontend-1", 20*time.Second, "log records at the collector", func() error {
		if _, err := request(c, http.MethodGet, url, "X-Request-Id", "warmup"); err != nil {
			return err
		}
		time.Sleep(700 * time.Millisecond)
		o.mu.Lock()
		defer o.mu.Unlock()
		if len(o.logs) == 0 || len(o.spans) < 2 {
			return fmt.Errorf("%d records, %d spans", len(o.logs), len(o.spans))
		}
		return nil
	})
	if _, err := request(c, http.MethodGet, url, "X-Request-Id", "otel-1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the log record and the spans of the request", func() error {
		o.mu.Lock()
		defer o.mu.Unlock()
		n := 0
		for _, l := range o.logs {
			if strings.HasSuffix(l, " otel-1") {
				n++
				if l != "frontend-1>backend 200 otel-1" {
					return fmt.Errorf("record %q", l)
				}
			}
		}
		if n != 1 {
			return fmt.Errorf("%d records of the request", n)
		}
		// The newest client span (kind 3) and its server child (kind 2).
		for i := len(o.spans) - 1; i >= 0; i-- {
			cl := o.spans[i]
			if cl.Kind != 3 {
				continue
			}
			for _, sv := range o.spans {
				if sv.Kind == 2 && sv.ParentSpanID == cl.SpanID && sv.TraceID == cl.TraceID && sv.Service == "backend" && cl.Service == "frontend-1" {
					return nil
				}
			}
		}
		return fmt.Errorf("no client span with a server child: %+v", o.spans)
	})
	noNacks(t, cp)
}
