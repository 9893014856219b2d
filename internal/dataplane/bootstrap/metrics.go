package bootstrap

import (
	"fmt"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"
)

// MetricsServiceSinkName is Envoy's name of the metrics-service stats sink.
const MetricsServiceSinkName = "envoy.stat_sinks.metrics_service"

// DefaultStatsFlushInterval is Envoy's stats_flush_interval when the
// bootstrap has none.
const DefaultStatsFlushInterval = 5 * time.Second

// MetricsSink is a metrics_service stats sink trellis-dp runs: it streams
// the proxy's metrics to the control plane over the ADS connection's
// address every FlushInterval.
type MetricsSink struct {
	FlushInterval time.Duration
	// EmitTagsAsLabels is the sink's emit_tags_as_labels (trellis-dp always
	// sends Prometheus names with labels).
	EmitTagsAsLabels bool
}

// metricsSinkOf reads the bootstrap's stats sinks. trellis-dp runs one
// metrics_service sink whose gRPC service is the ADS cluster; any other
// sink is reported in skipped (the proxy runs without it).
func metricsSinkOf(b *bootstrapv3.Bootstrap) (sink *MetricsSink, skipped []string) {
	adsCluster := b.GetDynamicResources().GetAdsConfig().GetGrpcServices()
	adsName := ""
	if len(adsCluster) > 0 {
		adsName = adsCluster[0].GetEnvoyGrpc().GetClusterName()
	}
	interval := DefaultStatsFlushInterval
	if d := b.GetStatsFlushInterval(); d != nil && d.AsDuration() > 0 {
		interval = d.AsDuration()
	}
	for i, s := range b.GetStatsSinks() {
		field := fmt.Sprintf("stats_sinks[%d]", i)
		if s.GetName() != MetricsServiceSinkName {
			skipped = append(skipped, fmt.Sprintf("%s: sink %q is not supported (only %s)", field, s.GetName(), MetricsServiceSinkName))
			continue
		}
		var conf metricsv3.MetricsServiceConfig
		if err := s.GetTypedConfig().UnmarshalTo(&conf); err != nil {
			skipped = append(skipped, fmt.Sprintf("%s.typed_config: %v", field, err))
			continue
		}
		if got := conf.GetGrpcService().GetEnvoyGrpc().GetClusterName(); got == "" || got != adsName {
			skipped = append(skipped, fmt.Sprintf("%s.typed_config.grpc_service.envoy_grpc.cluster_name %q: only the ADS cluster %q is supported", field, got, adsName))
			continue
		}
		if sink != nil {
			skipped = append(skipped, field+": a second metrics_service sink is not supported")
			continue
		}
		sink = &MetricsSink{FlushInterval: interval, EmitTagsAsLabels: conf.GetEmitTagsAsLabels()}
	}
	return sink, skipped
}
