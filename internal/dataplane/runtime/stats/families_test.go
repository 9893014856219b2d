package stats_test

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats/statstest"
)

type fixedCollector []stats.Sample

func (f fixedCollector) Samples() []stats.Sample { return f }

func testStore() *stats.Store {
	st := stats.NewStore()
	st.Counter("cluster.backend.upstream_rq_total").Add(3)
	st.Counter("cluster.backend.upstream_rq_2xx").Add(2)
	st.Counter("cluster.backend.upstream_rq_5xx").Add(1)
	st.Counter("cluster.web.upstream_rq_total").Add(1)
	st.Gauge("listener.127.0.0.1_8080.downstream_cx_active").Set(4)
	st.Gauge("cluster.backend.membership_healthy").Set(-1) // a race: reads 0
	h := st.Histogram("cluster.backend.upstream_rq_time")
	h.RecordDuration(300 * time.Microsecond) // 0.3 ms: bucket 0.5
	h.Record(7)                              // bucket 10
	h.Record(5_000_000)                      // above every bound
	st.AddCollector(fixedCollector{{Name: "control_plane.connected_state", Kind: stats.KindGauge, Value: 1}})
	return st
}

func text(t *testing.T, fams []*dto.MetricFamily) string {
	t.Helper()
	var b bytes.Buffer
	if err := stats.WriteText(&b, fams); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestFamilies(t *testing.T) {
	st := testStore()
	got := text(t, st.Families())
	want := `# HELP envoy_cluster_external_upstream_rq_xx Upstream responses by response code class, of requests from outside the proxy (every request, in trellis-dp).
# TYPE envoy_cluster_external_upstream_rq_xx counter
envoy_cluster_external_upstream_rq_xx{envoy_cluster_name="backend",envoy_response_code_class="2"} 2
envoy_cluster_external_upstream_rq_xx{envoy_cluster_name="backend",envoy_response_code_class="5"} 1
# HELP envoy_cluster_membership_healthy Current number of healthy hosts in the cluster.
# TYPE envoy_cluster_membership_healthy gauge
envoy_cluster_membership_healthy{envoy_cluster_name="backend"} 0
# HELP envoy_cluster_upstream_rq_time Upstream request time in milliseconds, from the request's start to the end of the response.
# TYPE envoy_cluster_upstream_rq_time histogram
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="0.5"} 1
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="1"} 1
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="5"} 1
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="10"} 2
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="25"} 2
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="50"} 2
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="100"} 2
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="250"} 2
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="500"} 2
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="1000"} 2
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="2500"} 2
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="5000"} 2
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="10000"} 2
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="30000"} 2
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="60000"} 2
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="300000"} 2
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="600000"} 2
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="1.8e+06"} 2
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="3.6e+06"} 2
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="+Inf"} 3
envoy_cluster_upstream_rq_time_sum{envoy_cluster_name="backend"} 5.0000073e+06
envoy_cluster_upstream_rq_time_count{envoy_cluster_name="backend"} 3
# HELP envoy_cluster_upstream_rq_total Total upstream requests.
# TYPE envoy_cluster_upstream_rq_total counter
envoy_cluster_upstream_rq_total{envoy_cluster_name="backend"} 3
envoy_cluster_upstream_rq_total{envoy_cluster_name="web"} 1
# HELP envoy_cluster_upstream_rq_xx Upstream responses by response code class.
# TYPE envoy_cluster_upstream_rq_xx counter
envoy_cluster_upstream_rq_xx{envoy_cluster_name="backend",envoy_response_code_class="2"} 2
envoy_cluster_upstream_rq_xx{envoy_cluster_name="backend",envoy_response_code_class="5"} 1
# HELP envoy_control_plane_connected_state 1 while the ADS stream to the control plane is open, else 0.
# TYPE envoy_control_plane_connected_state gauge
envoy_control_plane_connected_state 1
# HELP envoy_listener_downstream_cx_active Active connections.
# TYPE envoy_listener_downstream_cx_active gauge
envoy_listener_downstream_cx_active{envoy_listener_address="127.0.0.1_8080"} 4
`
	if got != want {
		t.Errorf("Families text =\n%s\nwant\n%s", got, want)
	}
	for range 5 {
		if again := text(t, st.Families()); again != got {
			t.Fatal("Families is not deterministic")
		}
	}
	statstest.CheckPromtool(t, got)
}

func TestFamiliesWith(t *testing.T) {
	st := testStore()
	st.Counter("cluster.backend.upstream_rq_retry") // zero: not "used"
	got := text(t, st.FamiliesWith(stats.FamilyOptions{UsedOnly: true, Filter: regexp.MustCompile(`^cluster\.`)}))
	if strings.Contains(got, "retry") || strings.Contains(got, "listener") || strings.Contains(got, "control_plane") {
		t.Errorf("usedonly + filter kept too much:\n%s", got)
	}
	if !strings.Contains(got, "envoy_cluster_upstream_rq_time_count") || !strings.Contains(got, "envoy_cluster_membership_healthy") {
		t.Errorf("usedonly dropped a used histogram or a gauge:\n%s", got)
	}
}

func TestPromName(t *testing.T) {
	for _, tc := range []struct{ stat, want string }{
		{"cluster.localhost:8080.upstream_cx_active", `envoy_cluster_upstream_cx_active{envoy_cluster_name="localhost_8080"}`},
		{"listener.[__1]_10001.ssl.fail_verify_san", `envoy_listener_ssl_fail_verify_san{envoy_listener_address="[__1]_10001"}`},
		{"http.inbound_web.downstream_rq_4xx", `envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix="inbound_web",envoy_response_code_class="4"}`},
		{"http.inbound_web.rbac.denied", `envoy_http_rbac_denied{envoy_http_conn_manager_prefix="inbound_web"}`},
		{"tcp.outbound:db.downstream_cx_total", `envoy_tcp_downstream_cx_total{envoy_tcp_prefix="outbound_db"}`},
		{"cluster_manager.cds.update_rejected", `envoy_cluster_manager_cds_update_rejected`},
		{"cluster.web.health_check.healthy", `envoy_cluster_health_check_healthy{envoy_cluster_name="web"}`},
	} {
		name, labels := stats.PromName(tc.stat)
		got := name
		if len(labels) > 0 {
			var parts []string
			for _, l := range labels {
				parts = append(parts, l.GetName()+`="`+l.GetValue()+`"`)
			}
			got += "{" + strings.Join(parts, ",") + "}"
		}
		if got != tc.want {
			t.Errorf("PromName(%q) = %s, want %s", tc.stat, got, tc.want)
		}
	}
}

func TestHistogramConcurrent(t *testing.T) {
	var h stats.Histogram
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.Record(uint64(i % 100))
			}
		}()
	}
	wg.Wait()
	v := h.Value()
	if v.Count != 8000 || v.Cumulative[len(v.Cumulative)-1] != 8000 {
		t.Errorf("count %d, last bucket %d; want 8000", v.Count, v.Cumulative[len(v.Cumulative)-1])
	}
	if v.SumMillis != 8*49500 {
		t.Errorf("sum %v, want %v", v.SumMillis, 8*49500)
	}
}

// A gauge named *_total (Envoy's membership_total) loses the suffix,
// which Prometheus reserves for counters.
func TestGaugeTotalSuffix(t *testing.T) {
	st := stats.NewStore()
	st.Gauge("cluster.web.membership_total").Set(3)
	got := text(t, st.Families())
	if !strings.Contains(got, "# TYPE envoy_cluster_membership gauge\nenvoy_cluster_membership{envoy_cluster_name=\"web\"} 3\n") {
		t.Errorf("got:\n%s", got)
	}
	statstest.CheckPromtool(t, got)
}

func TestNetworkRBACAndExternal(t *testing.T) {
	st := stats.NewStore()
	st.Counter("inbound:127.0.0.1:8080.rbac.denied").Add(2)
	st.Counter("http.inbound:web.rbac.allowed").Add(1)
	st.Counter("cluster.web.upstream_rq_2xx").Add(5)
	got := text(t, st.Families())
	for _, want := range []string{
		`envoy_rbac_denied{envoy_rbac_prefix="inbound_127.0.0.1_8080"} 2`,
		`envoy_http_rbac_allowed{envoy_http_conn_manager_prefix="inbound_web"} 1`,
		`envoy_cluster_external_upstream_rq_xx{envoy_cluster_name="web",envoy_response_code_class="2"} 5`,
		`envoy_cluster_upstream_rq_xx{envoy_cluster_name="web",envoy_response_code_class="2"} 5`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in:\n%s", want, got)
		}
	}
	statstest.CheckPromtool(t, got)
}
