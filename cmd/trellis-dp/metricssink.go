package main

import (
	"context"
	"crypto/tls"
	"log/slog"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/bootstrap"
	"github.com/trellis-mesh/trellis/internal/dataplane/metricssink"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime"
)

// startMetricsSink runs the bootstrap's metrics_service stats sink, if it
// has one, until ctx ends: the proxy's metrics go to the control plane at
// the ADS address, with the same TLS and token.
func startMetricsSink(ctx context.Context, settings *bootstrap.Settings, address string, tlsCfg *tls.Config,
	token func() (string, error), node *corev3.Node, rt *runtime.Runtime, log *slog.Logger) {
	for _, reason := range settings.SkippedSinks {
		log.Warn("a stats sink of the bootstrap is not run", "reason", reason)
	}
	if settings.MetricsSink == nil {
		return
	}
	sink, err := metricssink.New(metricssink.Options{
		Address: address, TLS: tlsCfg, Token: token, Node: node,
		Interval: settings.MetricsSink.FlushInterval, Families: rt.StatsStore().Families, Logger: log,
	})
	if err != nil {
		log.Warn("the metrics sink is not run", "err", err)
		return
	}
	go sink.Run(ctx)
}
