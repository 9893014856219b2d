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
