package bootstrap_test

import (
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/trellis-mesh/trellis/internal/dataplane/bootstrap"
)

func sink(t *testing.T, name, cluster string) *metricsv3.StatsSink {
	t.Helper()
	conf, err := anypb.New(&metricsv3.MetricsServiceConfig{
		GrpcService:         &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: cluster}}},
		TransportApiVersion: corev3.ApiVersion_V3, EmitTagsAsLabels: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &metricsv3.StatsSink{Name: name, ConfigType: &metricsv3.StatsSink_TypedConfig{TypedConfig: conf}}
}

func withSinks(interval time.Duration, sinks ...*metricsv3.StatsSink) *bootstrapv3.Bootstrap {
	b := &bootstrapv3.Bootstrap{
		Node: &corev3.Node{Id: "default.web-1"},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{AdsConfig: &corev3.ApiConfigSource{
			ApiType: corev3.ApiConfigSource_GRPC,
			GrpcServices: []*corev3.GrpcService{{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
				EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "ads_cluster"}}}},
		}},
		StatsSinks: sinks,
	}
	if interval > 0 {
		b.StatsFlushInterval = durationpb.New(interval)
	}
	return b
}

// The metrics_service sink over the ADS cluster is run; any other sink is
// reported and skipped, never an error.
func TestMetricsSinkSettings(t *testing.T) {
	s, err := bootstrap.SettingsOf(withSinks(2*time.Second, sink(t, bootstrap.MetricsServiceSinkName, "ads_cluster")))
	if err != nil {
		t.Fatal(err)
	}
	if s.MetricsSink == nil || s.MetricsSink.FlushInterval != 2*time.Second || !s.MetricsSink.EmitTagsAsLabels || len(s.SkippedSinks) != 0 {
		t.Fatalf("settings %+v %+v", s.MetricsSink, s.SkippedSinks)
	}
	s, _ = bootstrap.SettingsOf(withSinks(0, sink(t, bootstrap.MetricsServiceSinkName, "ads_cluster")))
	if s.MetricsSink.FlushInterval != bootstrap.DefaultStatsFlushInterval {
		t.Errorf("default interval %v", s.MetricsSink.FlushInterval)
	}
	s, err = bootstrap.SettingsOf(withSinks(0,
		sink(t, "envoy.stat_sinks.statsd", "ads_cluster"),
		sink(t, bootstrap.MetricsServiceSinkName, "collector"),
	))
	if err != nil {
		t.Fatal(err)
	}
	if s.MetricsSink != nil || len(s.SkippedSinks) != 2 ||
		!strings.Contains(s.SkippedSinks[0], "stats_sinks[0]: sink \"envoy.stat_sinks.statsd\" is not supported") ||
		!strings.Contains(s.SkippedSinks[1], "stats_sinks[1].typed_config.grpc_service.envoy_grpc.cluster_name \"collector\"") {
		t.Fatalf("skipped %q", s.SkippedSinks)
	}
}
