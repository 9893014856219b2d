package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	metricscfgv3 "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/service/metrics/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/cpmetrics/proxystats"
	"github.com/trellis-mesh/trellis/internal/resource"
)

// DefaultStatsFlushInterval is the bootstrap's stats_flush_interval when
// Config.StatsFlushInterval is zero: how often proxies stream their
// metrics to the control plane (Envoy's default too).
const DefaultStatsFlushInterval = 10 * time.Second

// metricsService serves envoy.service.metrics.v3.MetricsService on the
// data-plane server's port: proxies stream their metrics (Envoy's
// metrics_service stats sink) and the control plane keeps recent samples
// per proxy for the service map (docs/xds-contract.md, "Metrics stream").
type metricsService struct {
	metricsv3.UnimplementedMetricsServiceServer
	s *Server
}

// StreamMetrics reads one proxy's metrics messages. The first message
// carries the proxy's node (as on ADS: its Dataplane in the metadata), and
// the stream carries the proxy's dataplane token as ADS does; a stream
// whose proxy is unknown or whose token is refused ends with
// UNAUTHENTICATED (or INVALID_ARGUMENT for a malformed first message).
func (m *metricsService) StreamMetrics(stream metricsv3.MetricsService_StreamMetricsServer) error {
	s := m.s
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	node := first.GetIdentifier().GetNode()
	if node == nil {
		return status.Error(codes.InvalidArgument, "the first StreamMetricsMessage must carry identifier.node")
	}
	info, err := identify(node, func(meshName, name string, data []byte) (*resource.Resource, error) {
		return decodeDataplane(s.dpDesc(), data, meshName, name)
	})
	if err != nil {
		return status.Error(codes.InvalidArgument, "identifier.node: "+err.Error())
	}
	if info.proxyless || info.dataplane == nil {
		return status.Error(codes.InvalidArgument, "identifier.node: only sidecars stream metrics")
	}
	ctx, cancel := context.WithTimeout(stream.Context(), 10*time.Second)
	err = s.authenticateStream(ctx, tokenFromContext(stream.Context()), info)
	cancel()
	if err != nil {
		return err
	}
	services := info.dataplane.Spec.(*mesh.Dataplane).ServiceNames()
	key := proxystats.Key{Mesh: info.key.Mesh, Name: info.key.Name}
	defer s.cfg.Metrics.DPMetricsStreamOpened()()
	s.log.Debug("proxy streams its metrics", "proxy", info.key.String())
	for msg := first; ; {
		s.cfg.Metrics.DPMetricsMessage()
		if s.cfg.ProxyStats != nil {
			s.cfg.ProxyStats.Record(key, services, msg.GetEnvoyMetrics())
		}
		msg, err = stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&metricsv3.StreamMetricsResponse{})
		}
		if err != nil {
			return err
		}
	}
}

// statsSinkName is Envoy's name of the metrics-service stats sink.
const statsSinkName = "envoy.stat_sinks.metrics_service"

// statsSinks returns the bootstrap's stats_sinks and stats_flush_interval:
// one metrics_service sink streaming to this server over the bootstrap's
// ADS cluster, with tags as labels.
func (s *Server) statsSinks() ([]*metricscfgv3.StatsSink, *durationpb.Duration, error) {
	conf, err := anypb.New(&metricscfgv3.MetricsServiceConfig{
		GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: adsClusterName}},
		},
		TransportApiVersion: corev3.ApiVersion_V3,
		EmitTagsAsLabels:    true,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the metrics service sink: %w", err)
	}
	interval := s.cfg.StatsFlushInterval
	if interval <= 0 {
		interval = DefaultStatsFlushInterval
	}
	sinks := []*metricscfgv3.StatsSink{{Name: statsSinkName, ConfigType: &metricscfgv3.StatsSink_TypedConfig{TypedConfig: conf}}}
	return sinks, durationpb.New(interval), nil
}
