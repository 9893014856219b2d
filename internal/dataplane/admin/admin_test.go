package admin_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/trellis-mesh/trellis/internal/dataplane/admin"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats/statstest"
	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

var updated = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// source is a fixed accepted config.
type source struct{ cfg *xdsconfig.Config }

func (s source) AcceptedConfig() *xdsconfig.Config { return s.cfg }

func (s source) ResourceStatus(typeURL, name string) (string, time.Time) {
	return s.cfg.Versions[typeURL], updated
}

// statsSource is a fixed set of stats and text readouts.
type statsSource struct {
	values map[string]uint64
	texts  map[string]string
}

func (s statsSource) Stats() map[string]uint64 { return s.values }

func (s statsSource) TextReadouts() map[string]string { return s.texts }

func testConfig(t *testing.T) *xdsconfig.Config {
	t.Helper()
	tcp, err := anypb.New(&tcpv3.TcpProxy{StatPrefix: "backend", ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: "backend"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := xdsconfig.New()
	cfg.Listeners["outbound:127.0.0.1:10001"] = &listenerv3.Listener{
		Name: "outbound:127.0.0.1:10001",
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: tcp},
		}}}},
	}
	cfg.Listeners["inbound:10.0.0.1:10000"] = &listenerv3.Listener{Name: "inbound:10.0.0.1:10000"}
	cfg.Clusters["backend"] = &clusterv3.Cluster{Name: "backend"}
	cfg.Routes["outbound:backend"] = &routev3.RouteConfiguration{Name: "outbound:backend"}
	cfg.Endpoints["backend"] = &endpointv3.ClusterLoadAssignment{ClusterName: "backend"}
	cfg.Secrets["identity"] = &tlsv3.Secret{Name: "identity", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "CERT"}},
		PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "SECRET KEY"}},
	}}}
	cfg.Versions[xdsconfig.ListenerType] = "7"
	cfg.Versions[xdsconfig.ClusterType] = "3"
	return cfg
}

func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code, rec.Body.String()
}

func TestConfigDump(t *testing.T) {
	s := admin.New(admin.Options{Config: source{testConfig(t)}})
	code, body := get(t, s.Handler(), http.MethodGet, "/config_dump")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	for _, want := range []string{`"dynamic_listeners"`, `"active_state"`, `"version_info": "7"`, `tcp_proxy.v3.TcpProxy",`, `"stat_prefix": "backend"`} {
		if !strings.Contains(body, want) {
			t.Errorf("config dump lacks %s", want)
		}
	}
	if strings.Contains(body, "SECRET KEY") {
		t.Error("the private key is in the config dump")
	}

	var dump adminv3.ConfigDump
	if err := protojson.Unmarshal([]byte(body), &dump); err != nil {
		t.Fatalf("decoding the dump: %v", err)
	}
	var ls adminv3.ListenersConfigDump
	var cs adminv3.ClustersConfigDump
	var rs adminv3.RoutesConfigDump
	var es adminv3.EndpointsConfigDump
	var ss adminv3.SecretsConfigDump
	wantTypes := []string{"ClustersConfigDump", "ListenersConfigDump", "RoutesConfigDump", "EndpointsConfigDump", "SecretsConfigDump"}
	if len(dump.GetConfigs()) != len(wantTypes) {
		t.Fatalf("%d configs, want %d", len(dump.GetConfigs()), len(wantTypes))
	}
	for i, a := range dump.GetConfigs() {
		if !strings.HasSuffix(a.GetTypeUrl(), "envoy.admin.v3."+wantTypes[i]) {
			t.Errorf("configs[%d] is %s, want %s", i, a.GetTypeUrl(), wantTypes[i])
		}
	}
	mustUnpack(t, dump.Configs[0], &cs)
	mustUnpack(t, dump.Configs[1], &ls)
	mustUnpack(t, dump.Configs[2], &rs)
	mustUnpack(t, dump.Configs[3], &es)
	mustUnpack(t, dump.Configs[4], &ss)

	if ls.GetVersionInfo() != "7" || len(ls.GetDynamicListeners()) != 2 {
		t.Fatalf("listeners dump: %v", &ls)
	}
	first := ls.GetDynamicListeners()[0]
	if first.GetName() != "inbound:10.0.0.1:10000" {
		t.Errorf("listeners not sorted: first is %q", first.GetName())
	}
	var l listenerv3.Listener
	mustUnpack(t, first.GetActiveState().GetListener(), &l)
	if l.GetName() != first.GetName() || first.GetActiveState().GetVersionInfo() != "7" ||
		!first.GetActiveState().GetLastUpdated().AsTime().Equal(updated) {
		t.Errorf("active_state = %v", first.GetActiveState())
	}
	if len(cs.GetDynamicActiveClusters()) != 1 || cs.GetVersionInfo() != "3" {
		t.Errorf("clusters dump: %v", &cs)
	}
	if len(rs.GetDynamicRouteConfigs()) != 1 || len(es.GetDynamicEndpointConfigs()) != 1 {
		t.Errorf("routes, endpoints: %d, %d", len(rs.GetDynamicRouteConfigs()), len(es.GetDynamicEndpointConfigs()))
	}
	var sec tlsv3.Secret
	mustUnpack(t, ss.GetDynamicActiveSecrets()[0].GetSecret(), &sec)
	if k := sec.GetTlsCertificate().GetPrivateKey().GetInlineString(); k != "[redacted]" {
		t.Errorf("private key = %q, want [redacted]", k)
	}
}

func mustUnpack(t *testing.T, a *anypb.Any, m proto.Message) {
	t.Helper()
	if err := a.UnmarshalTo(m); err != nil {
		t.Fatalf("unpacking %s: %v", a.GetTypeUrl(), err)
	}
}

func TestReadyAndQuit(t *testing.T) {
	var ready atomic.Bool
	var quits atomic.Int32
	s := admin.New(admin.Options{
		Config: source{xdsconfig.New()},
		Ready:  ready.Load,
		Quit:   func() { quits.Add(1) },
	})
	h := s.Handler()
	if code, body := get(t, h, http.MethodGet, "/ready"); code != http.StatusServiceUnavailable || body != "INITIALIZING\n" {
		t.Errorf("before the first config: %d %q", code, body)
	}
	ready.Store(true)
	if code, body := get(t, h, http.MethodGet, "/ready"); code != http.StatusOK || body != "LIVE\n" {
		t.Errorf("after the first config: %d %q", code, body)
	}
	if code, _ := get(t, h, http.MethodGet, "/quitquitquit"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /quitquitquit: %d, want 405", code)
	}
	if quits.Load() != 0 {
		t.Fatal("GET /quitquitquit quit")
	}
	for range 2 {
		if code, body := get(t, h, http.MethodPost, "/quitquitquit"); code != http.StatusOK || body != "OK\n" {
			t.Errorf("POST /quitquitquit: %d %q", code, body)
		}
	}
	if quits.Load() != 1 {
		t.Errorf("Quit called %d times, want 1", quits.Load())
	}
	if code, body := get(t, h, http.MethodGet, "/ready"); code != http.StatusServiceUnavailable || body != "DRAINING\n" {
		t.Errorf("after /quitquitquit: %d %q", code, body)
	}
}

var testStats = []admin.StatsSource{
	statsSource{
		values: map[string]uint64{"control_plane.connected_state": 1, "xds.cds.update_success": 4},
		texts:  map[string]string{"control_plane.last_error": `rpc "error"`},
	},
	statsSource{values: map[string]uint64{
		"cluster.backend.upstream_rq_total":            10,
		"cluster.backend.upstream_rq_2xx":              9,
		"cluster.localhost_8080.upstream_cx_active":    2,
		"listener.127.0.0.1_10001.downstream_cx_total": 5,
		"http.outbound_backend.downstream_rq_5xx":      1,
		"listener.[__1]_10001.downstream_cx_total":     1,
		"tcp.127.0.0.1:80.downstream_cx_total":         3,
	}},
}

func TestStats(t *testing.T) {
	s := admin.New(admin.Options{Config: source{xdsconfig.New()}, Stats: testStats})
	code, body := get(t, s.Handler(), http.MethodGet, "/stats")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	want := `cluster.backend.upstream_rq_2xx: 9
cluster.backend.upstream_rq_total: 10
cluster.localhost_8080.upstream_cx_active: 2
control_plane.connected_state: 1
control_plane.last_error: "rpc \"error\""
http.outbound_backend.downstream_rq_5xx: 1
listener.127.0.0.1_10001.downstream_cx_total: 5
listener.[__1]_10001.downstream_cx_total: 1
tcp.127.0.0.1:80.downstream_cx_total: 3
xds.cds.update_success: 4
`
	if body != want {
		t.Errorf("/stats =\n%s\nwant\n%s", body, want)
	}
	if _, body := get(t, s.Handler(), http.MethodGet, "/stats?filter=^xds%5C."); body != "xds.cds.update_success: 4\n" {
		t.Errorf("/stats?filter = %q", body)
	}
	if code, _ := get(t, s.Handler(), http.MethodGet, "/stats?filter=("); code != http.StatusBadRequest {
		t.Errorf("bad filter: %d, want 400", code)
	}
}

// promStore is a stats store shaped like a running proxy's.
func promStore() *stats.Store {
	st := stats.NewStore()
	st.Counter("cluster.backend.upstream_rq_total").Add(10)
	st.Counter("cluster.backend.upstream_rq_2xx").Add(9)
	st.Gauge("cluster.localhost:8080.upstream_cx_active").Set(2)
	st.Counter("listener.127.0.0.1_10001.downstream_cx_total").Add(5)
	st.Counter("listener.[__1]_10001.downstream_cx_total").Add(1)
	st.Counter("http.outbound_backend.downstream_rq_5xx").Add(1)
	st.Counter("tcp.127.0.0.1:80.downstream_cx_total").Add(3)
	st.Counter("cluster.backend.upstream_rq_retry")
	st.Histogram("cluster.backend.upstream_rq_time").Record(7)
	return st
}

func TestPrometheus(t *testing.T) {
	st := promStore()
	s := admin.New(admin.Options{Config: source{xdsconfig.New()}, Stats: testStats, Metrics: st, Ready: func() bool { return true }})
	code, body := get(t, s.Handler(), http.MethodGet, "/stats/prometheus")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{
		"# HELP envoy_cluster_upstream_rq_total Total upstream requests.\n# TYPE envoy_cluster_upstream_rq_total counter\n",
		`envoy_cluster_upstream_rq_total{envoy_cluster_name="backend"} 10`,
		`envoy_cluster_upstream_rq_xx{envoy_cluster_name="backend",envoy_response_code_class="2"} 9`,
		"# TYPE envoy_cluster_upstream_cx_active gauge\n",
		`envoy_cluster_upstream_cx_active{envoy_cluster_name="localhost_8080"} 2`,
		`envoy_listener_downstream_cx_total{envoy_listener_address="127.0.0.1_10001"} 5`,
		`envoy_listener_downstream_cx_total{envoy_listener_address="[__1]_10001"} 1`,
		`envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix="outbound_backend",envoy_response_code_class="5"} 1`,
		`envoy_tcp_downstream_cx_total{envoy_tcp_prefix="127.0.0.1_80"} 3`,
		"# TYPE envoy_cluster_upstream_rq_time histogram\n",
		`envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="5"} 0`,
		`envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="backend",le="10"} 1`,
		`envoy_cluster_upstream_rq_time_count{envoy_cluster_name="backend"} 1`,
		"envoy_server_live 1\n",
		"# TYPE envoy_server_uptime gauge\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/stats/prometheus lacks %q:\n%s", want, body)
		}
	}
	if strings.Count(body, "# TYPE envoy_listener_downstream_cx_total ") != 1 {
		t.Error("one metric family is split")
	}
	if strings.Contains(body, "last_error") {
		t.Error("text readouts in the Prometheus output")
	}
	statstest.CheckPromtool(t, body)

	_, used := get(t, s.Handler(), http.MethodGet, "/stats/prometheus?usedonly&filter=%5Ecluster%5C.")
	if strings.Contains(used, "upstream_rq_retry") || strings.Contains(used, "listener") || !strings.Contains(used, "envoy_cluster_upstream_rq_total") {
		t.Errorf("?usedonly&filter=^cluster\\. gave:\n%s", used)
	}
	if code, _ := get(t, s.Handler(), http.MethodGet, "/stats/prometheus?filter=("); code != http.StatusBadRequest {
		t.Errorf("bad filter: %d, want 400", code)
	}
}

func TestServeAndShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := admin.New(admin.Options{Config: source{xdsconfig.New()}, Ready: func() bool { return true }})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "LIVE\n" {
		t.Errorf("/ready over TCP: %d %q", resp.StatusCode, body)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

func TestProfilingIsOptIn(t *testing.T) {
	off := admin.New(admin.Options{Config: source{xdsconfig.New()}})
	if code, _ := get(t, off.Handler(), http.MethodGet, "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without EnableProfiling: %d, want 404", code)
	}
	on := admin.New(admin.Options{Config: source{xdsconfig.New()}, EnableProfiling: true})
	code, body := get(t, on.Handler(), http.MethodGet, "/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(body, "heap") {
		t.Errorf("/debug/pprof/ with EnableProfiling: %d %q", code, body)
	}
	if code, _ := get(t, on.Handler(), http.MethodGet, "/debug/pprof/heap?debug=1"); code != http.StatusOK {
		t.Errorf("/debug/pprof/heap: %d", code)
	}
	if _, body := get(t, on.Handler(), http.MethodGet, "/"); !strings.Contains(body, "/debug/pprof/") {
		t.Errorf("index does not list /debug/pprof/:\n%s", body)
	}
}
