package cpmetrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// promtool runs `promtool check metrics` on text and returns its findings;
// it skips the test when promtool is missing (fails under
// TRELLIS_TEST_STRICT=1).
func promtool(t *testing.T, text string) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		msg := "promtool is not installed (Debian: apt-get install prometheus)"
		if os.Getenv("TRELLIS_TEST_STRICT") == "1" {
			t.Fatal(msg + " and TRELLIS_TEST_STRICT=1")
		}
		t.Skip(msg)
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

// Every metric, once it has a sample, is exposed with HELP and TYPE and
// passes promtool without findings.
func TestEveryMetricIsCleanForPromtool(t *testing.T) {
	m := New()
	m.SetInfo("cp-1", "c-1", "dev")
	m.ObserveGeneration(3*time.Millisecond, nil)
	m.ObserveGeneration(0, errors.New("boom"))
	m.ObservePush(20 * time.Millisecond)
	m.ObserveACK(5 * time.Millisecond)
	m.ProxyConnected("default", ModeDelta)
	m.StreamOpened()
	m.ResponseSent("type.googleapis.com/envoy.config.listener.v3.Listener")
	m.RequestReceived("default", "type.googleapis.com/envoy.config.listener.v3.Listener", false)
	m.RequestReceived("default", "type.googleapis.com/envoy.config.listener.v3.Listener", true)
	m.ObserveStore("get", "Mesh", "sqlite", time.Millisecond)
	m.DPMetricsStreamOpened()()
	m.DPMetricsMessage()
	api := m.InstrumentAPI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }),
		func(*http.Request) string { return "GET /meshes/{mesh}/{path}" })
	api.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/meshes/default/dataplanes", nil))

	text := scrape(t, m.Handler())
	for _, name := range []string{
		"xds_generation", "xds_generation_errors_total", "trellis_cp_xds_push_latency_seconds",
		"trellis_cp_xds_ack_latency_seconds", "xds_delivery", "trellis_cp_connected_proxies", "xds_streams_active",
		"xds_requests_received_total", "trellis_cp_xds_nacks_total", "xds_responses_sent_total", "store",
		"trellis_cp_api_requests_total", "api_server_http_request_duration_seconds",
		"trellis_cp_dp_metrics_streams_active", "trellis_cp_dp_metrics_messages_total",
		"go_goroutines", "process_cpu_seconds_total", "cp_info",
	} {
		if !strings.Contains(text, "# HELP "+name+" ") || !strings.Contains(text, "# TYPE "+name+" ") {
			t.Errorf("%s has no HELP or TYPE line", name)
		}
	}
	want := `trellis_cp_api_requests_total{code="418",handler="GET /meshes/{mesh}/{path}",method="GET"} 1`
	if !strings.Contains(text, want) {
		t.Errorf("no %s in\n%s", want, text)
	}
	if !strings.Contains(text, `trellis_cp_connected_proxies{mesh="default",xds_mode="delta"} 1`) {
		t.Error("connected proxies not by mesh and mode")
	}
	if out := promtool(t, text); out != "" {
		t.Errorf("promtool check metrics:\n%s", out)
	}
}

// A nil *Metrics does nothing (components built without metrics).
func TestNilMetricsIsANoOp(t *testing.T) {
	var m *Metrics
	m.ObserveGeneration(time.Millisecond, nil)
	m.ProxyConnected("default", ModeSotW)
	m.RequestReceived("default", "x", true)
	m.DPMetricsStreamOpened()()
	h := http.NotFoundHandler()
	if got := m.InstrumentAPI(h, nil); got == nil {
		t.Fatal("nil handler")
	}
}
