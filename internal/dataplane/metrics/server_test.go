package metrics_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/trellis-mesh/trellis/internal/dataplane/metrics"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats/statstest"
	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

const appMetrics = `# HELP app_orders_total Orders taken.
# TYPE app_orders_total counter
app_orders_total{kind="book"} 7
# HELP envoy_cluster_upstream_rq_total An application that reuses a sidecar name.
# TYPE envoy_cluster_upstream_rq_total counter
envoy_cluster_upstream_rq_total 99
`

func server(t *testing.T, meta map[string]any) (*metrics.Server, *stats.Store) {
	t.Helper()
	st := stats.NewStore()
	st.Counter("cluster.backend.upstream_rq_total").Add(3)
	st.Counter("cluster.backend.upstream_rq_retry") // unused
	st.Gauge("server.live").Set(1)
	st.Counter("listener.127.0.0.1_80.downstream_cx_total").Add(2)
	l := &listenerv3.Listener{Name: "_kuma:metrics:prometheus:main"}
	if meta != nil {
		s, err := structpb.NewStruct(meta)
		if err != nil {
			t.Fatal(err)
		}
		l.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{metrics.MetadataKey: s}}
	}
	cfg := xdsconfig.New()
	cfg.Listeners[l.Name] = l
	return &metrics.Server{Store: st, Config: func() *xdsconfig.Config { return cfg }}, st
}

func get(t *testing.T, h http.Handler, query string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stats/prometheus?"+query, nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

func TestMergesApplications(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, appMetrics)
	}))
	defer app.Close()
	u, _ := url.Parse(app.URL)
	host, port, _ := net.SplitHostPort(u.Host)
	p, _ := strconv.Atoi(port)
	s, _ := server(t, map[string]any{
		"applications": []any{
			map[string]any{"name": "app", "address": host, "port": float64(p), "path": "/metrics"},
			map[string]any{"name": "down", "address": "127.0.0.1", "port": float64(1), "path": "/metrics"},
		},
		"include": []any{map[string]any{"type": "Prefix", "match": "envoy_server_"}},
		"exclude": []any{map[string]any{"type": "Regex", "match": "^envoy_listener_"}},
	})
	code, body := get(t, s, "meshmetric=_kuma%3Ametrics%3Aprometheus%3Amain&filter=%5Ecluster%5C.&usedonly")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	for _, want := range []string{
		`envoy_cluster_upstream_rq_total{envoy_cluster_name="backend"} 3`,
		"envoy_server_live 1", // include wins over the filter
		`app_orders_total{kind="book"} 7`,
		"# HELP app_orders_total Orders taken.",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q in:\n%s", want, body)
		}
	}
	for _, not := range []string{"envoy_listener_", "upstream_rq_retry", " 99"} {
		if strings.Contains(body, not) {
			t.Errorf("%q should be left out:\n%s", not, body)
		}
	}
	statstest.CheckPromtool(t, body)
}

func TestUnknownListener(t *testing.T) {
	s, _ := server(t, nil)
	if code, _ := get(t, s, "meshmetric=nope"); code != http.StatusNotFound {
		t.Errorf("status %d, want 404", code)
	}
	if code, _ := get(t, s, "meshmetric=_kuma%3Ametrics%3Aprometheus%3Amain&filter=("); code != http.StatusBadRequest {
		t.Errorf("bad filter: status %d, want 400", code)
	}
}

func TestNoConfigYet(t *testing.T) {
	s := &metrics.Server{Store: stats.NewStore(), Config: func() *xdsconfig.Config { return nil }}
	if code, _ := get(t, s, "meshmetric=x"); code != http.StatusNotFound {
		t.Errorf("status %d, want 404", code)
	}
}

func TestBadMetadata(t *testing.T) {
	s, _ := server(t, map[string]any{"applications": []any{map[string]any{"port": float64(0), "path": "/m"}}})
	code, body := get(t, s, "meshmetric=_kuma%3Ametrics%3Aprometheus%3Amain")
	if code != http.StatusInternalServerError || !strings.Contains(body, "applications[0].port") {
		t.Errorf("status %d %q, want 500 naming applications[0].port", code, body)
	}
}
