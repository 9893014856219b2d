package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats/statstest"
)

// meshMetricFor exposes the sidecar metrics of one service on port, with
// the application's own /metrics (on appPort, when not 0) merged in.
func meshMetricFor(service string, port, appPort int) string {
	apps := ""
	if appPort != 0 {
		apps = fmt.Sprintf("    applications:\n    - {name: %s, path: /metrics, port: %d}\n", service, appPort)
	}
	return fmt.Sprintf(`type: MeshMetric
name: metrics-%s
mesh: default
spec:
  targetRef:
    kind: MeshSubset
    tags: {kuma.io/service: %s}
  default:
%s    backends:
    - type: Prometheus
      prometheus: {clientId: main, port: %d, path: /metrics}
`, service, service, apps, port)
}

// startMetricsApp is an HTTP application that answers its instance name
// and exposes its own Prometheus metrics on /metrics.
func startMetricsApp(t *testing.T, instance string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, "# HELP backend_app_orders_total Orders the application took.\n# TYPE backend_app_orders_total counter\nbackend_app_orders_total{kind=\"book\"} 42\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"instance": instance})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// scrape GETs a Prometheus endpoint and returns its text and families.
func scrape(t *testing.T, url string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: %s: %s", url, resp.Status, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("%s is not the Prometheus text format: %v\n%s", url, err, body)
	}
	return string(body), fams
}

// sumWhere sums the counter values of a family's series whose label has a
// value that keep accepts.
func sumWhere(fams map[string]*dto.MetricFamily, family, label string, keep func(string) bool) float64 {
	var sum float64
	for _, m := range fams[family].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && keep(l.GetValue()) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func is(v string) func(string) bool { return func(s string) bool { return s == v } }

// A sidecar pair with mTLS under N requests: both sidecars' admin
// /stats/prometheus and MeshMetric endpoints pass promtool with no finding
// but the _total hint; the client's upstream request counter (and latency
// histogram count) for backend and the server's inbound request counters
// grow by exactly N; the backend
// application's own metrics appear merged on its MeshMetric endpoint.
func TestSidecarMetrics(t *testing.T) {
	const n = 50
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})
	cp.mustCtl(mtlsMesh("STRICT", "24h"), "apply", "-f", "-")
	cp.mustCtl(allowAll, "apply", "-f", "-")
	backendMetrics, frontendMetrics := freePort(t), freePort(t)
	appPort := startMetricsApp(t, "backend-1")
	cp.mustCtl(meshMetricFor("backend", backendMetrics, appPort), "apply", "-f", "-")
	cp.mustCtl(meshMetricFor("frontend-1", frontendMetrics, 0), "apply", "-f", "-")

	backend := startDP(t, cp, "backend-1", serviceDP(t, "backend-1", "backend", "http", appPort))
	toBackend := freePort(t)
	frontend := startDP(t, cp, "frontend-1", clientDP(t, "frontend-1", map[int]string{toBackend: "backend"}))

	c := newClient()
	url := fmt.Sprintf("http://127.0.0.1:%d/", toBackend)
	eventually(t, 10*time.Second, "frontend → backend over mTLS", func() error {
		_, err := get(c, url)
		return err
	})
	// The counters are read before and after the n requests: their
	// difference must be n (the warm-up above may have needed retries).
	// The baseline is taken once two reads agree: a request's latency is
	// recorded just after its response is sent, so the warm-up's may land
	// after the client has it.
	var before map[string]float64
	eventually(t, 5*time.Second, "the counters to settle", func() error {
		a := pairCounters(t, frontend, backend, appPort)
		time.Sleep(200 * time.Millisecond)
		before = pairCounters(t, frontend, backend, appPort)
		for k, v := range before {
			if a[k] != v {
				return fmt.Errorf("%s moved from %v to %v", k, a[k], v)
			}
		}
		return nil
	})
	for i := range n {
		if inst, err := get(c, url); err != nil || inst != "backend-1" {
			t.Fatalf("request %d: %q %v", i, inst, err)
		}
	}
	eventually(t, 5*time.Second, "the counters to grow by n", func() error {
		after := pairCounters(t, frontend, backend, appPort)
		for k, v := range after {
			if v-before[k] != n {
				return fmt.Errorf("%s grew by %v, want %d", k, v-before[k], n)
			}
		}
		return nil
	})
	_, client := scrape(t, "http://"+frontend.admin+"/stats/prometheus")
	for _, fam := range []string{"envoy_listener_ssl_handshake", "envoy_cluster_ssl_handshake", "envoy_control_plane_connected_state", "envoy_server_live"} {
		if _, ok := client[fam]; !ok {
			if _, srv := scrape(t, "http://"+backend.admin+"/stats/prometheus"); srv[fam] == nil {
				t.Errorf("neither sidecar exports %s", fam)
			}
		}
	}

	// The MeshMetric endpoints: the sidecar's metrics, and on the backend
	// the application's merged in.
	var bodies []string
	eventually(t, 10*time.Second, "the MeshMetric endpoints", func() error {
		bodies = bodies[:0]
		for _, port := range []int{backendMetrics, frontendMetrics} {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("port %d: %s: %s", port, resp.Status, body)
			}
			bodies = append(bodies, string(body))
		}
		if !strings.Contains(bodies[0], `backend_app_orders_total{kind="book"} 42`) {
			return fmt.Errorf("the backend's MeshMetric endpoint lacks the application's metric:\n%s", bodies[0])
		}
		if !strings.Contains(bodies[0], "envoy_http_downstream_rq_total") || !strings.Contains(bodies[1], "envoy_cluster_upstream_rq_total") {
			return fmt.Errorf("a MeshMetric endpoint lacks the sidecar's metrics")
		}
		return nil
	})

	// promtool: nothing but the _total hint, everywhere.
	adminBack, _ := scrape(t, "http://"+backend.admin+"/stats/prometheus")
	adminFront, _ := scrape(t, "http://"+frontend.admin+"/stats/prometheus")
	for i, body := range []string{adminBack, adminFront, bodies[0], bodies[1]} {
		if bad := statstest.Findings(t, body); len(bad) > 0 {
			t.Errorf("promtool check metrics on endpoint %d:\n%s", i, strings.Join(bad, "\n"))
		}
	}
}

// An OpenTelemetry MeshMetric backend is accepted with a warning that
// it is not supported yet.
func TestMeshMetricOpenTelemetryWarns(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})
	body := `{"type":"MeshMetric","mesh":"default","name":"otel","spec":{"targetRef":{"kind":"Mesh"},"default":{"backends":[{"type":"OpenTelemetry","openTelemetry":{"endpoint":"127.0.0.1:4317"}}]}}}`
	req, _ := http.NewRequest(http.MethodPut, cp.URL+"/meshes/default/meshmetrics/otel", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(answer), "spec.default.backends[0]: the OpenTelemetry backend is not supported yet") {
		t.Errorf("PUT answered %s %s, want 201 with a warning", resp.Status, answer)
	}
}

// pairCounters reads the request counters of the sidecar pair: the
// client's upstream requests and 2xx to backend, the server's inbound
// requests (HTTP connection manager and local cluster).
func pairCounters(t *testing.T, frontend, backend *proxy, appPort int) map[string]float64 {
	t.Helper()
	_, client := scrape(t, "http://"+frontend.admin+"/stats/prometheus")
	_, server := scrape(t, "http://"+backend.admin+"/stats/prometheus")
	inbound := func(s string) bool { return strings.HasPrefix(s, "inbound") }
	local := fmt.Sprintf("localhost_%d", appPort)
	return map[string]float64{
		"client envoy_cluster_upstream_rq_total{envoy_cluster_name=backend}":       sumWhere(client, "envoy_cluster_upstream_rq_total", "envoy_cluster_name", is("backend")),
		"client envoy_cluster_upstream_rq_xx{envoy_response_code_class=2}":         sumWhere(client, "envoy_cluster_upstream_rq_xx", "envoy_response_code_class", is("2")),
		"server inbound envoy_http_downstream_rq_total":                            sumWhere(server, "envoy_http_downstream_rq_total", "envoy_http_conn_manager_prefix", inbound),
		"server envoy_cluster_upstream_rq_total{envoy_cluster_name=" + local + "}": sumWhere(server, "envoy_cluster_upstream_rq_total", "envoy_cluster_name", is(local)),
		"client envoy_cluster_upstream_rq_time_count{envoy_cluster_name=backend}":  float64(histogramCount(client, "envoy_cluster_upstream_rq_time", "backend")),
		"server inbound envoy_http_downstream_rq_time_count":                       float64(histogramCountWhere(server, "envoy_http_downstream_rq_time", "envoy_http_conn_manager_prefix", inbound)),
	}
}

// histogramCountWhere sums the sample counts of a histogram's series
// whose label has a value keep accepts.
func histogramCountWhere(fams map[string]*dto.MetricFamily, family, label string, keep func(string) bool) uint64 {
	var n uint64
	for _, m := range fams[family].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && keep(l.GetValue()) {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// histogramCount is the sample count of a cluster's histogram.
func histogramCount(fams map[string]*dto.MetricFamily, family, cluster string) uint64 {
	for _, m := range fams[family].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "envoy_cluster_name" && l.GetValue() == cluster {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}
