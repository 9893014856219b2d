package build

import (
	"cmp"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/trellis-mesh/trellis/api/policy/meshmetric"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// MeshMetric (docs/xds-contract.md, "MeshMetric"): the proxy-wide default
// (a Single rule) gives the proxy, per Prometheus backend, a listener
// "_kuma:metrics:prometheus:<clientId>" on networking.address:<port>
// whose HTTP route <path> goes, rewritten to the admin's
// /stats/prometheus, to a STATIC cluster of the same name at
// 127.0.0.1:<networking.admin.port>. A real Envoy serves its own stats
// there. The listener's metadata (filter_metadata "trellis.io/meshmetric")
// lists the applications to scrape and the include/exclude selectors;
// trellis-dp's admin server reads it (the rewritten query names the
// listener) and merges the applications' metrics in.

const meshMetricKind = "MeshMetric"

// MeshMetric names and defaults (Kuma's).
const (
	metricsListenerPrefix = "_kuma:metrics:prometheus:"
	defaultMetricsPort    = 5670
	defaultMetricsPath    = "/metrics"
	defaultClientID       = "default-backend"
	defaultAppPath        = "/metrics/prometheus"
	// MeshMetricMetadataKey is the listener filter_metadata key of the
	// MeshMetric endpoint's settings for trellis-dp.
	MeshMetricMetadataKey = "trellis.io/meshmetric"
	metricsAdminTimeout   = 5 * time.Second
)

// basicProfile is Kuma's "Basic" profile as an Envoy stats filter (RE2,
// matched against dotted stat names): the stats Kuma's dashboards read.
const basicProfile = `^(cluster\.[^.]+\.(upstream_rq_(total|time|xx|[1-5]xx|timeout|retry.*|pending_overflow|active)|upstream_cx_(active|total|connect_fail|connect_timeout|rx_bytes_total|tx_bytes_total|overflow)|external_upstream_rq_[1-5]xx|membership_(healthy|total)|health_check\..*|outlier_detection\.ejections_active|ssl\.handshake)|http\.[^.]+\.(downstream_rq_(total|time|xx|[1-5]xx)|downstream_cx_active|rbac\..*)|listener\..+\.(downstream_cx_(active|total)|ssl\.(connection_error|fail_verify_.*|handshake))|tcp\..+\.downstream_cx_(total|rx_bytes_total|tx_bytes_total)|control_plane\..*|cluster_manager\.cds\..*|listener_manager\.lds\..*|server\..*|.+\.rbac\.[^.]+)$`

// noneProfile matches no stat.
const noneProfile = `^$`

func init() {
	register(Plugin{
		Name:         meshMetricKind,
		Order:        320,
		ProxyInbound: addMetricsListeners,
	})
}

// addMetricsListeners adds the listener and cluster of every Prometheus
// backend of the proxy-wide MeshMetric.
func addMetricsListeners(p *proxymodel.Proxy, r *Resources) error {
	m := p.Policies[meshMetricKind]
	if m == nil || m.Single == nil {
		return nil
	}
	conf, err := decodeShared[meshmetric.Conf](m.Single.Conf)
	if err != nil {
		return fmt.Errorf("(%v): %w", m.Single.Origins, err)
	}
	if conf.Backends == nil {
		return nil
	}
	filter, err := sidecarFilter(conf.Sidecar)
	if err != nil {
		return fmt.Errorf("spec.default.sidecar.%w", err)
	}
	meta, err := metricsMetadata(p, conf)
	if err != nil {
		return fmt.Errorf("spec.default.%w", err)
	}
	ports := map[uint32]string{}
	for _, in := range p.Inbounds {
		ports[in.Port] = fmt.Sprintf("inbound %s:%d", in.Address, in.Port)
	}
	for i, b := range *conf.Backends {
		if b.Type != meshmetric.PrometheusBackendType {
			// OpenTelemetry: accepted by the API with a warning that it is
			// not supported yet (internal/resource/warnings.go); no push.
			continue
		}
		if err := addPrometheusBackend(p, r, b.Prometheus, conf, filter, meta, ports); err != nil {
			return fmt.Errorf("spec.default.backends[%d].prometheus.%w", i, err)
		}
	}
	return nil
}

// addPrometheusBackend adds the listener, route and cluster of one
// Prometheus backend.
func addPrometheusBackend(p *proxymodel.Proxy, r *Resources, b *meshmetric.PrometheusBackend, conf meshmetric.Conf, filter string, meta *corev3.Metadata, ports map[uint32]string) error {
	if b == nil {
		b = &meshmetric.PrometheusBackend{}
	}
	id := defaultClientID
	if b.ClientId != nil && *b.ClientId != "" {
		id = *b.ClientId
	}
	port := uint32(defaultMetricsPort)
	if b.Port != nil {
		port = *b.Port
	}
	if other, used := ports[port]; used {
		return fmt.Errorf("port: %d is already used by %s", port, other)
	}
	path := defaultMetricsPath
	if b.Path != nil && *b.Path != "" {
		path = *b.Path
	}
	if !strings.HasPrefix(path, "/") || !validTargetPath(path) {
		return fmt.Errorf("path: %q must start with / and hold no space, '?' or control character", path)
	}
	if b.Tls != nil && b.Tls.Mode != "" && b.Tls.Mode != "Disabled" {
		return fmt.Errorf("tls.mode: %s is not supported yet (use Disabled)", b.Tls.Mode)
	}
	ports[port] = "the MeshMetric backend " + id
	name := metricsListenerPrefix + id
	rewrite := "/stats/prometheus?meshmetric=" + url.QueryEscape(name)
	if filter != "" {
		rewrite += "&filter=" + url.QueryEscape(filter)
	}
	if !includeUnused(conf.Sidecar) {
		rewrite += "&usedonly"
	}
	rc := &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    name,
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: path}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: name},
					PrefixRewrite:    rewrite,
					Timeout:          durationpb.New(metricsAdminTimeout),
				}},
			}},
		}},
	}
	f, err := hcmFilter(strings.NewReplacer(":", "_").Replace(name), name, nil, func(m *hcmv3.HttpConnectionManager) error {
		m.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc}
		return nil
	})
	if err != nil {
		return err
	}
	addr := cmp.Or(p.Address, "0.0.0.0")
	l := singleChainListener(name, addr, port, corev3.TrafficDirection_INBOUND, f)
	l.Metadata = meta
	r.Listeners = append(r.Listeners, l)
	r.Clusters = append(r.Clusters, &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(metricsAdminTimeout),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress("127.0.0.1", p.AdminPort)}},
			}}}},
		},
	})
	return nil
}

// includeUnused reports whether stats that were never used are published
// too (Envoy's /stats/prometheus without ?usedonly); Kuma's default is no.
func includeUnused(s *meshmetric.Sidecar) bool {
	return s != nil && s.IncludeUnused != nil && *s.IncludeUnused
}

// validTargetPath reports whether a path can go into a request target
// unescaped.
func validTargetPath(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '?' || c == '#' {
			return false
		}
	}
	return true
}

// sidecarFilter turns the sidecar settings into one Envoy stats filter
// (RE2 on dotted stat names; "" keeps every stat): the deprecated regex
// when set, else the union of the appended profiles (All, Basic, None;
// no profile means All, as in Kuma).
func sidecarFilter(s *meshmetric.Sidecar) (string, error) {
	if s == nil {
		return "", nil
	}
	if s.Regex != nil && *s.Regex != "" {
		if _, err := regexp.Compile(*s.Regex); err != nil {
			return "", fmt.Errorf("regex: %w", err)
		}
		return *s.Regex, nil
	}
	if s.Profiles == nil || s.Profiles.AppendProfiles == nil {
		return "", nil
	}
	var parts []string
	for i, pr := range *s.Profiles.AppendProfiles {
		switch pr.Name {
		case "All":
			return "", nil
		case "Basic":
			parts = append(parts, basicProfile)
		case "None":
		default:
			return "", fmt.Errorf("profiles.appendProfiles[%d].name: unknown profile %q", i, pr.Name)
		}
	}
	if len(parts) == 0 {
		return noneProfile, nil
	}
	return strings.Join(slices.Compact(parts), "|"), nil
}

// metricsMetadata is the listener metadata trellis-dp reads: the
// applications to scrape (address defaulting to networking.address, path
// to /metrics/prometheus) and the profiles' include/exclude selectors.
func metricsMetadata(p *proxymodel.Proxy, conf meshmetric.Conf) (*corev3.Metadata, error) {
	fields := map[string]any{}
	if conf.Applications != nil && len(*conf.Applications) > 0 {
		var apps []any
		for i, a := range *conf.Applications {
			if a.Port == 0 || a.Port > 65535 {
				return nil, fmt.Errorf("applications[%d].port: %d is not a port", i, a.Port)
			}
			path := defaultAppPath
			if a.Path != nil && *a.Path != "" {
				path = *a.Path
			}
			addr := cmp.Or(p.Address, "127.0.0.1")
			if a.Address != nil && *a.Address != "" {
				addr = *a.Address
			}
			app := map[string]any{"address": addr, "port": float64(a.Port), "path": path}
			if a.Name != nil {
				app["name"] = *a.Name
			}
			apps = append(apps, app)
		}
		fields["applications"] = apps
	}
	if s := conf.Sidecar; s != nil && s.Profiles != nil {
		for _, sel := range []struct {
			key  string
			list *[]meshmetric.Selector
		}{{"include", s.Profiles.Include}, {"exclude", s.Profiles.Exclude}} {
			if sel.list == nil || len(*sel.list) == 0 {
				continue
			}
			var out []any
			for _, x := range *sel.list {
				out = append(out, map[string]any{"type": x.Type, "match": x.Match})
			}
			fields[sel.key] = out
		}
	}
	if len(fields) == 0 {
		return nil, nil
	}
	st, err := structpb.NewStruct(fields)
	if err != nil {
		return nil, fmt.Errorf("applications: %w", err)
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{MeshMetricMetadataKey: st}}, nil
}
