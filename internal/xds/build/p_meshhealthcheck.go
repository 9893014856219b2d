package build

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/api/policy/meshhealthcheck"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// MeshHealthCheck (docs/xds-contract.md, "Traffic policies"), to[] only:
// one active health check on every cluster of an outbound, of the kind
// Kuma picks by the service's protocol (http for http and http2, grpc for
// grpc, tcp for tcp; tcp also when the protocol's own check is disabled
// and tcp is configured), with Kuma's defaults for the required
// settings; and the cluster's healthy panic threshold.

const meshHealthCheckKind = "MeshHealthCheck"

// Defaults of the settings Envoy requires (Kuma's).
const (
	defaultHCInterval           = time.Minute
	defaultHCTimeout            = 15 * time.Second
	defaultHCUnhealthyThreshold = 5
	defaultHCHealthyThreshold   = 1
	defaultHCPath               = "/"
)

func init() {
	register(Plugin{
		Name:  meshHealthCheckKind,
		Order: 130,
		OutboundCluster: func(p *proxymodel.Proxy, out *proxymodel.Outbound, c *clusterv3.Cluster) error {
			conf, ok, err := outboundConf[meshhealthcheck.Conf](p, meshHealthCheckKind, out)
			if err != nil || !ok {
				return err
			}
			if err := healthCheck(conf, out.Protocol, c); err != nil {
				return fmt.Errorf("to %s: %w", out.Service, err)
			}
			return nil
		},
	})
}

// healthCheck applies a conf to a cluster of a service of protocol.
func healthCheck(conf meshhealthcheck.Conf, protocol string, c *clusterv3.Cluster) error {
	switch {
	case conf.UnhealthyInterval != nil:
		return fmt.Errorf("unhealthyInterval is not supported by trellis-dp")
	case conf.EventLogPath != nil:
		return fmt.Errorf("eventLogPath is not supported by trellis-dp")
	case conf.AlwaysLogHealthCheckFailures != nil && *conf.AlwaysLogHealthCheckFailures:
		return fmt.Errorf("alwaysLogHealthCheckFailures is not supported by trellis-dp")
	case conf.FailTrafficOnPanic != nil && *conf.FailTrafficOnPanic:
		return fmt.Errorf("failTrafficOnPanic is not supported by trellis-dp")
	}
	if conf.HealthyPanicThreshold != nil {
		if err := setHealthyPanicThreshold(c, conf.HealthyPanicThreshold); err != nil {
			return fmt.Errorf("healthyPanicThreshold: %w", err)
		}
	}
	hc := &corev3.HealthCheck{
		Interval:           durationOr(conf.Interval, defaultHCInterval),
		Timeout:            durationOr(conf.Timeout, defaultHCTimeout),
		UnhealthyThreshold: wrapperspb.UInt32(uint32(int32Or(conf.UnhealthyThreshold, defaultHCUnhealthyThreshold))),
		HealthyThreshold:   wrapperspb.UInt32(uint32(int32Or(conf.HealthyThreshold, defaultHCHealthyThreshold))),
		InitialJitter:      pbDuration(conf.InitialJitter),
		IntervalJitter:     pbDuration(conf.IntervalJitter),
		NoTrafficInterval:  pbDuration(conf.NoTrafficInterval),
	}
	if conf.IntervalJitterPercent != nil {
		hc.IntervalJitterPercent = uint32(*conf.IntervalJitterPercent)
	}
	if conf.ReuseConnection != nil {
		hc.ReuseConnection = wrapperspb.Bool(*conf.ReuseConnection)
	}
	switch healthCheckKind(protocol, conf) {
	case "http":
		hc.HealthChecker = httpHealthChecker(conf.HTTP)
	case "grpc":
		g := conf.GRPC
		hc.HealthChecker = &corev3.HealthCheck_GrpcHealthCheck_{GrpcHealthCheck: &corev3.HealthCheck_GrpcHealthCheck{
			ServiceName: deref(g.ServiceName),
			Authority:   deref(g.Authority),
		}}
	case "tcp":
		hc.HealthChecker = tcpHealthChecker(conf.TCP)
	default:
		return nil
	}
	c.HealthChecks = []*corev3.HealthCheck{hc}
	return nil
}

// healthCheckKind picks the check as Kuma does: the protocol's own when
// configured and enabled, else tcp when the protocol's own is configured
// but disabled and tcp is configured and enabled, else none.
func healthCheckKind(protocol string, conf meshhealthcheck.Conf) string {
	tcpOn := conf.TCP != nil && !deref(conf.TCP.Disabled)
	var own string
	var set, disabled bool
	switch {
	case protocol == mesh.ProtocolGRPC:
		own, set = "grpc", conf.GRPC != nil
		disabled = set && deref(conf.GRPC.Disabled)
	case isHTTP(protocol):
		own, set = "http", conf.HTTP != nil
		disabled = set && deref(conf.HTTP.Disabled)
	default:
		own, set = "tcp", conf.TCP != nil
		disabled = set && deref(conf.TCP.Disabled)
	}
	switch {
	case set && !disabled:
		return own
	case set && disabled && tcpOn:
		return "tcp"
	}
	return ""
}

func httpHealthChecker(h *meshhealthcheck.HTTPHealthCheck) *corev3.HealthCheck_HttpHealthCheck_ {
	hh := &corev3.HealthCheck_HttpHealthCheck{Path: defaultHCPath}
	if h.Path != nil {
		hh.Path = *h.Path
	}
	for _, code := range h.ExpectedStatuses {
		hh.ExpectedStatuses = append(hh.ExpectedStatuses, &typev3.Int64Range{Start: int64(code), End: int64(code) + 1})
	}
	if m := h.RequestHeadersToAdd; m != nil {
		// As Kuma: comma-separated values are separate header values.
		// A set value's first part replaces, the others are appended.
		add := func(kvs []meshhealthcheck.HeaderKeyValue, first corev3.HeaderValueOption_HeaderAppendAction) {
			for _, kv := range kvs {
				action := first
				for _, v := range strings.Split(kv.Value, ",") {
					hh.RequestHeadersToAdd = append(hh.RequestHeadersToAdd, &corev3.HeaderValueOption{
						Header:       &corev3.HeaderValue{Key: kv.Name, Value: v},
						AppendAction: action,
					})
					action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
				}
			}
		}
		add(m.Add, corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)
		add(m.Set, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)
	}
	return &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: hh}
}

// tcpHealthChecker sends and expects the payloads as Kuma does: the
// bytes of the configured strings, hex-encoded into Envoy's text form.
func tcpHealthChecker(t *meshhealthcheck.TCPHealthCheck) *corev3.HealthCheck_TcpHealthCheck_ {
	th := &corev3.HealthCheck_TcpHealthCheck{}
	if t.Send != nil {
		th.Send = &corev3.HealthCheck_Payload{Payload: &corev3.HealthCheck_Payload_Text{Text: hex.EncodeToString([]byte(*t.Send))}}
	}
	for _, r := range t.Receive {
		th.Receive = append(th.Receive, &corev3.HealthCheck_Payload{Payload: &corev3.HealthCheck_Payload_Text{Text: hex.EncodeToString([]byte(r))}})
	}
	return &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: th}
}

func durationOr(d *common.Duration, def time.Duration) *durationpb.Duration {
	if d == nil {
		return durationpb.New(def)
	}
	return pbDuration(d)
}

func int32Or(v *int32, def int32) int32 {
	if v == nil {
		return def
	}
	return *v
}

func deref[T any](v *T) T {
	var zero T
	if v == nil {
		return zero
	}
	return *v
}
