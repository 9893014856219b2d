package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	metricscfgv3 "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/service/metrics/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	dto "github.com/prometheus/client_model/go"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-mesh/trellis/internal/cpmetrics"
	"github.com/trellis-mesh/trellis/internal/cpmetrics/proxystats"
	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/xds/server"
)

// gauge returns the value of a metric of the registry with the given
// labels (all of them), or -1.
func metricValue(t *testing.T, m *cpmetrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue next
				}
			}
			switch {
			case mt.GetGauge() != nil:
				return mt.GetGauge().GetValue()
			case mt.GetCounter() != nil:
				return mt.GetCounter().GetValue()
			case mt.GetHistogram() != nil:
				return float64(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

// The xDS metrics follow a proxy's stream: connected, responses sent,
// ACKs with their latency, and the push latency of its first config.
func TestXDSMetrics(t *testing.T) {
	m := cpmetrics.New()
	c := startCP(t, time.Minute, func(cfg *server.Config) { cfg.Metrics = m })
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(c.dial(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := dpNode(t, "backend-1", 18081)
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResponseNonce: resp.Nonce, VersionInfo: resp.VersionInfo}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ACK to be counted", func() bool {
		return metricValue(t, m, "xds_requests_received_total", map[string]string{"confirmation": "ACK", "type_url": resourcev3.ListenerType}) == 1
	})
	for name, labels := range map[string]map[string]string{
		"trellis_cp_connected_proxies":        {"mesh": "default", "xds_mode": "sotw"},
		"xds_streams_active":                  nil,
		"xds_responses_sent_total":            {"type_url": resourcev3.ListenerType},
		"trellis_cp_xds_ack_latency_seconds":  nil,
		"xds_delivery":                        nil,
		"trellis_cp_xds_push_latency_seconds": nil,
		"xds_generation":                      nil,
	} {
		if v := metricValue(t, m, name, labels); v < 1 {
			t.Errorf("%s%v = %v, want ≥ 1", name, labels, v)
		}
	}
	cancel()
	waitFor(t, "the proxy to be counted out", func() bool {
		return metricValue(t, m, "trellis_cp_connected_proxies", map[string]string{"mesh": "default"}) == 0 &&
			metricValue(t, m, "xds_streams_active", nil) == 0
	})
}

// The bootstrap tells the proxy to stream its metrics to the control plane
// over its ADS cluster, every stats_flush_interval.
func TestBootstrapHasTheMetricsServiceSink(t *testing.T) {
	c := startCP(t, time.Minute, func(cfg *server.Config) { cfg.StatsFlushInterval = 1500 * time.Millisecond })
	pem, err := os.ReadFile(c.caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}, Timeout: 10 * time.Second}
	dp := `{"type":"Dataplane","mesh":"default","name":"backend-1","networking":{"address":"127.0.0.1","inbound":[{"port":18094,"tags":{"kuma.io/service":"backend"}}]}}`
	body, _ := json.Marshal(server.BootstrapRequest{Mesh: "default", Name: "backend-1", ProxyType: "dataplane", DataplaneResource: dp})
	resp, err := hc.Post("https://"+c.addr+"/bootstrap", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(raw, &b); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if got := b.GetStatsFlushInterval().AsDuration(); got != 1500*time.Millisecond {
		t.Errorf("stats_flush_interval = %v", got)
	}
	if len(b.GetStatsSinks()) != 1 || b.GetStatsSinks()[0].GetName() != "envoy.stat_sinks.metrics_service" {
		t.Fatalf("stats_sinks = %v", b.GetStatsSinks())
	}
	var conf metricscfgv3.MetricsServiceConfig
	if err := b.GetStatsSinks()[0].GetTypedConfig().UnmarshalTo(&conf); err != nil {
		t.Fatal(err)
	}
	ads := b.GetDynamicResources().GetAdsConfig().GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName()
	if conf.GetGrpcService().GetEnvoyGrpc().GetClusterName() != ads || !conf.GetEmitTagsAsLabels() || conf.GetTransportApiVersion().String() != "V3" {
		t.Errorf("metrics service config = %v, want the ADS cluster %q, V3, tags as labels", &conf, ads)
	}
}

// requestFamilies are the counters of one proxy's cluster, as trellis-dp
// streams them.
func requestFamilies(cluster string, total, fivexx float64) []*dto.MetricFamily {
	counter := dto.MetricType_COUNTER
	label := func(k, v string) *dto.LabelPair { return &dto.LabelPair{Name: proto.String(k), Value: proto.String(v)} }
	return []*dto.MetricFamily{
		{Name: proto.String("envoy_cluster_upstream_rq_total"), Type: &counter, Metric: []*dto.Metric{{
			Label: []*dto.LabelPair{label("envoy_cluster_name", cluster)}, Counter: &dto.Counter{Value: proto.Float64(total)},
		}}},
		{Name: proto.String("envoy_cluster_upstream_rq_xx"), Type: &counter, Metric: []*dto.Metric{{
			Label: []*dto.LabelPair{label("envoy_cluster_name", cluster), label("envoy_response_code_class", "5")}, Counter: &dto.Counter{Value: proto.Float64(fivexx)},
		}}},
	}
}

// StreamMetrics takes samples from an authenticated proxy only.
func TestStreamMetricsNeedsAToken(t *testing.T) {
	stats := proxystats.New(time.Minute)
	m := cpmetrics.New()
	c := startCP(t, time.Minute, withTokens, func(cfg *server.Config) { cfg.ProxyStats, cfg.Metrics = stats, m })
	client := metricsv3.NewMetricsServiceClient(c.dial(t))
	node := dpNode(t, "frontend-1", 18095)
	send := func(tok string) error {
		ctx, cancel := context.WithTimeout(withToken(context.Background(), tok), 10*time.Second)
		defer cancel()
		stream, err := client.StreamMetrics(ctx)
		if err != nil {
			return err
		}
		msgs := []*metricsv3.StreamMetricsMessage{
			{Identifier: &metricsv3.StreamMetricsMessage_Identifier{Node: node}, EnvoyMetrics: requestFamilies("web", 10, 1)},
			{EnvoyMetrics: requestFamilies("web", 30, 2)},
		}
		for _, msg := range msgs {
			if err := stream.Send(msg); err != nil {
				break // the server ended the stream: CloseAndRecv has why
			}
		}
		_, err = stream.CloseAndRecv()
		return err
	}
	err := send("")
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(status.Convert(err).Message(), "no token") {
		t.Fatalf("no token: %v, want Unauthenticated", err)
	}
	if n := len(stats.Samples(proxystats.Key{Mesh: "default", Name: "frontend-1"})); n != 0 {
		t.Fatalf("%d samples kept from a refused stream", n)
	}
	if err := send(c.token(t, serviceToken("backend"))); err != nil {
		t.Fatal(err)
	}
	samples := stats.Samples(proxystats.Key{Mesh: "default", Name: "frontend-1"})
	if len(samples) != 2 || samples[1].Clusters["web"] != (proxystats.Counters{Requests: 30, Errors: 2}) {
		t.Fatalf("samples %+v", samples)
	}
	if v := metricValue(t, m, "trellis_cp_dp_metrics_messages_total", nil); v != 2 {
		t.Errorf("messages counted: %v", v)
	}
}

// With mTLS, the proxy's insight says when its certificate expires, when
// it was issued and by which backend, as Kuma's DataplaneInsight.mTLS.
func TestInsightShowsTheCertificate(t *testing.T) {
	c := startCP(t, time.Minute)
	c.apply(t, mtlsMesh("1h"))
	ads := connect(t, c, "backend-1", 18096)
	ads.subscribe(resourcev3.ListenerType)
	var in *insights.DataplaneInsight
	waitFor(t, "the insight's mTLS", func() bool {
		var err error
		in, err = insights.Get(context.Background(), c.mgr.Store(), "default", "backend-1")
		return err == nil && in.MTLS != nil
	})
	m := in.MTLS
	if m.IssuedBackend != "ca-1" || len(m.SupportedBackends) != 1 || m.CertificateRegenerations != 1 || m.CertificateExpirationTime == nil || m.LastCertificateRegeneration == nil {
		t.Fatalf("mTLS insight %+v", m)
	}
	if left := time.Until(*m.CertificateExpirationTime); left < 50*time.Minute || left > 61*time.Minute {
		t.Errorf("certificate expires in %v, want about 1h", left)
	}
	js, _ := json.Marshal(in)
	for _, key := range []string{`"mTLS":{`, `"certificateExpirationTime":`, `"lastCertificateRegeneration":`, `"certificateRegenerations":1`, `"issuedBackend":"ca-1"`, `"supportedBackends":["ca-1"]`} {
		if !strings.Contains(string(js), key) {
			t.Errorf("insight JSON lacks %s: %s", key, js)
		}
	}
}

// A delta stream counts under xds_mode="delta", and its ACKs (matched by
// nonce) are timed; a NACK is counted per mesh.
func TestXDSMetricsDelta(t *testing.T) {
	m := cpmetrics.New()
	c := startCP(t, time.Minute, func(cfg *server.Config) { cfg.Metrics = m })
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(c.dial(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := ads.DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := dpNode(t, "backend-1", 18097)
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType, ResponseNonce: resp.Nonce}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delta ACK to be timed", func() bool {
		return metricValue(t, m, "trellis_cp_xds_ack_latency_seconds", nil) == 1 &&
			metricValue(t, m, "trellis_cp_connected_proxies", map[string]string{"xds_mode": "delta"}) == 1
	})
	c.apply(t, `type: Dataplane
mesh: default
name: backend-1
networking:
  address: 127.0.0.1
  inbound:
  - port: 18098
    tags:
      kuma.io/service: backend
`)
	resp, err = stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType, ResponseNonce: resp.Nonce,
		ErrorDetail: &statuspb.Status{Code: 3, Message: "no"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the NACK to be counted", func() bool {
		return metricValue(t, m, "trellis_cp_xds_nacks_total", map[string]string{"mesh": "default", "type_url": resourcev3.ListenerType}) == 1
	})
}
