package build

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tracingv3 "github.com/envoyproxy/go-control-plane/envoy/type/tracing/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/policy/meshtrace"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// MeshTrace (docs/xds-contract.md, "MeshTrace"): the proxy-wide default
// (a Single rule) sets the tracing of every HTTP connection manager,
// inbound and outbound, with the first backend as the provider (Kuma
// takes one backend), and adds the collector's cluster.

const meshTraceKind = "MeshTrace"

// Provider and cluster names (Kuma's).
const (
	zipkinTracerName      = "envoy.tracers.zipkin"
	otelTracerName        = "envoy.tracers.opentelemetry"
	zipkinCollectorName   = "meshtrace:zipkin"
	otelCollectorName     = "meshtrace:opentelemetry"
	collectorTimeout      = time.Second
	collectorConnectLimit = 5 * time.Second
)

func init() {
	register(Plugin{
		Name:  meshTraceKind,
		Order: 310,
		OutboundHCM: func(p *proxymodel.Proxy, _ *proxymodel.Outbound, m *hcmv3.HttpConnectionManager) error {
			return applyTracing(p, m)
		},
		InboundHCM: func(p *proxymodel.Proxy, _ *proxymodel.Inbound, m *hcmv3.HttpConnectionManager) error {
			return applyTracing(p, m)
		},
		ProxyOutbound: addTraceCluster,
		ProxyInbound:  addTraceCluster,
	})
}

// traceConf returns the proxy-wide MeshTrace conf and its backend; ok is
// false when there is none (or no backend: tracing off).
func traceConf(p *proxymodel.Proxy) (conf meshtrace.Conf, b meshtrace.Backend, ok bool, err error) {
	m := p.Policies[meshTraceKind]
	if m == nil || m.Single == nil {
		return conf, b, false, nil
	}
	if conf, err = decodeShared[meshtrace.Conf](m.Single.Conf); err != nil {
		return conf, b, false, fmt.Errorf("(%v): %w", m.Single.Origins, err)
	}
	if conf.Backends == nil || len(*conf.Backends) == 0 {
		return conf, b, false, nil
	}
	return conf, (*conf.Backends)[0], true, nil
}

func applyTracing(p *proxymodel.Proxy, m *hcmv3.HttpConnectionManager) error {
	conf, b, ok, err := traceConf(p)
	if err != nil || !ok {
		return err
	}
	t, err := tracing(p, conf, b)
	if err != nil {
		return fmt.Errorf("spec.default.%w", err)
	}
	m.Tracing = t
	return nil
}

// tracing builds the HCM's tracing.
func tracing(p *proxymodel.Proxy, conf meshtrace.Conf, b meshtrace.Backend) (*hcmv3.HttpConnectionManager_Tracing, error) {
	t := &hcmv3.HttpConnectionManager_Tracing{
		OverallSampling:   tracePercent(100),
		ClientSampling:    tracePercent(100),
		RandomSampling:    tracePercent(100),
		SpawnUpstreamSpan: wrapperspb.Bool(false),
	}
	if s := conf.Sampling; s != nil {
		for _, f := range []struct {
			name string
			v    *common.IntOrString
			dst  **typev3.Percent
		}{{"overall", s.Overall, &t.OverallSampling}, {"client", s.Client, &t.ClientSampling}, {"random", s.Random, &t.RandomSampling}} {
			if f.v == nil {
				continue
			}
			v, err := samplingPercent(f.v)
			if err != nil {
				return nil, fmt.Errorf("sampling.%s: %w", f.name, err)
			}
			*f.dst = tracePercent(v)
		}
	}
	if conf.Tags != nil {
		for i, tag := range *conf.Tags {
			ct := &tracingv3.CustomTag{Tag: tag.Name}
			switch {
			case tag.Literal != nil:
				ct.Type = &tracingv3.CustomTag_Literal_{Literal: &tracingv3.CustomTag_Literal{Value: *tag.Literal}}
			case tag.Header != nil:
				h := &tracingv3.CustomTag_Header{Name: tag.Header.Name}
				if tag.Header.Default != nil {
					h.DefaultValue = *tag.Header.Default
				}
				ct.Type = &tracingv3.CustomTag_RequestHeader{RequestHeader: h}
			default:
				return nil, fmt.Errorf("tags[%d]: literal or header is required", i)
			}
			t.CustomTags = append(t.CustomTags, ct)
		}
	}
	t.CustomTags = append(t.CustomTags, literalTag("kuma.mesh", p.Mesh))
	if p.Zone != "" {
		t.CustomTags = append(t.CustomTags, literalTag("kuma.zone", p.Zone))
	}
	provider, err := traceProvider(p, b)
	if err != nil {
		return nil, err
	}
	t.Provider = provider
	return t, nil
}

func literalTag(name, value string) *tracingv3.CustomTag {
	return &tracingv3.CustomTag{Tag: name, Type: &tracingv3.CustomTag_Literal_{Literal: &tracingv3.CustomTag_Literal{Value: value}}}
}

func tracePercent(v float64) *typev3.Percent { return &typev3.Percent{Value: v} }

// samplingPercent reads a sampling percentage: an integer or a decimal
// string, 0 to 100.
func samplingPercent(v *common.IntOrString) (float64, error) {
	r, err := v.Rat()
	if err != nil {
		return 0, err
	}
	f, _ := r.Float64()
	if f < 0 || f > 100 {
		return 0, fmt.Errorf("%v is not between 0 and 100", f)
	}
	return f, nil
}

func traceProvider(p *proxymodel.Proxy, b meshtrace.Backend) (*tracev3.Tracing_Http, error) {
	switch {
	case b.Zipkin != nil:
		z := b.Zipkin
		u, host, port, err := collectorURL(z.Url)
		if err != nil {
			return nil, fmt.Errorf("backends[0].zipkin.url: %w", err)
		}
		version := tracev3.ZipkinConfig_HTTP_JSON
		if z.ApiVersion != nil && *z.ApiVersion == "httpProto" {
			version = tracev3.ZipkinConfig_HTTP_PROTO
		}
		path := u.Path
		if path == "" {
			path = "/api/v2/spans"
		}
		cfg := &tracev3.ZipkinConfig{
			CollectorCluster:         zipkinCollectorName,
			CollectorEndpoint:        path,
			CollectorEndpointVersion: version,
			CollectorHostname:        net.JoinHostPort(host, strconv.Itoa(int(port))),
			TraceId_128Bit:           z.TraceId128Bit != nil && *z.TraceId128Bit,
			SharedSpanContext:        wrapperspb.Bool(z.SharedSpanContext == nil || *z.SharedSpanContext),
		}
		a, err := anyOf(cfg)
		if err != nil {
			return nil, err
		}
		return &tracev3.Tracing_Http{Name: zipkinTracerName, ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: a}}, nil
	case b.OpenTelemetry != nil:
		o := b.OpenTelemetry
		if o.BackendRef != nil {
			return nil, fmt.Errorf("backends[0].openTelemetry.backendRef: MeshOpenTelemetryBackend is not supported yet (use endpoint)")
		}
		host, port, err := collectorHostPort(o.Endpoint, 4318)
		if err != nil {
			return nil, fmt.Errorf("backends[0].openTelemetry.endpoint: %w", err)
		}
		svc := "unknown"
		if len(p.Services) > 0 {
			svc = p.Services[0]
		}
		cfg := &tracev3.OpenTelemetryConfig{
			HttpService: otlpHTTPService(otelCollectorName, host, port, "/v1/traces"),
			ServiceName: svc,
		}
		a, err := anyOf(cfg)
		if err != nil {
			return nil, err
		}
		return &tracev3.Tracing_Http{Name: otelTracerName, ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: a}}, nil
	case b.Datadog != nil:
		return nil, fmt.Errorf("backends[0].datadog: the Datadog backend is not supported by trellis-dp")
	}
	return nil, fmt.Errorf("backends[0]: backend type %q is not supported", b.Type)
}

// addTraceCluster adds the collector's cluster of the proxy's tracing
// backend, when r does not have it yet.
func addTraceCluster(p *proxymodel.Proxy, r *Resources) error {
	_, b, ok, err := traceConf(p)
	if err != nil || !ok {
		return err
	}
	switch {
	case b.Zipkin != nil:
		_, host, port, err := collectorURL(b.Zipkin.Url)
		if err != nil {
			return fmt.Errorf("spec.default.backends[0].zipkin.url: %w", err)
		}
		addCollectorCluster(r, zipkinCollectorName, host, port)
	case b.OpenTelemetry != nil && b.OpenTelemetry.BackendRef == nil:
		host, port, err := collectorHostPort(b.OpenTelemetry.Endpoint, 4318)
		if err != nil {
			return fmt.Errorf("spec.default.backends[0].openTelemetry.endpoint: %w", err)
		}
		addCollectorCluster(r, otelCollectorName, host, port)
	}
	return nil
}

// collectorURL parses a collector URL (http only; default port 80).
func collectorURL(raw string) (*url.URL, string, uint32, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", 0, err
	}
	if u.Scheme != "http" {
		return nil, "", 0, fmt.Errorf("%q: only http URLs are supported", raw)
	}
	host, port, err := collectorHostPort(u.Host, 80)
	return u, host, port, err
}

// collectorHostPort splits a collector's host[:port]; the host must be an
// IP address (trellis-dp's clusters are STATIC or EDS: no DNS yet).
func collectorHostPort(hostport string, defPort uint32) (string, uint32, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	port := defPort
	if err != nil {
		host = hostport
	} else {
		n, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || n == 0 {
			return "", 0, fmt.Errorf("%q: invalid port", hostport)
		}
		port = uint32(n)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return "", 0, fmt.Errorf("%q: the host must be an IP address (trellis-dp has no DNS clusters yet)", hostport)
	}
	return host, port, nil
}

// otlpHTTPService is an OTLP/HTTP export to path on a collector cluster.
func otlpHTTPService(cluster, host string, port uint32, path string) *corev3.HttpService {
	return &corev3.HttpService{HttpUri: &corev3.HttpUri{
		Uri:              "http://" + net.JoinHostPort(host, strconv.Itoa(int(port))) + path,
		HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: cluster},
		Timeout:          durationpb.New(collectorTimeout),
	}}
}

// addCollectorCluster adds a STATIC cluster to host:port named name,
// unless r has one by that name.
func addCollectorCluster(r *Resources, name, host string, port uint32) {
	if slices.ContainsFunc(r.Clusters, func(c *clusterv3.Cluster) bool { return c.GetName() == name }) {
		return
	}
	r.Clusters = append(r.Clusters, &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(collectorConnectLimit),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(host, port)}},
			}}}},
		},
	})
}
