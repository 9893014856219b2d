package build

import (
	"cmp"
	"fmt"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// Plugin is what one policy kind does to a sidecar's resources. Sidecar
// builds the default resources and calls every plugin's hooks on them
// while it builds, before typed configs are packed into Any values, so a
// hook edits plain Envoy messages. Every hook is optional. Hooks read what
// the kind's policies say from the proxy model (Proxy.OutboundRule,
// Proxy.InboundRule, Proxy.InboundMatch) and must be deterministic; they
// may run more than once for one inbound (a PERMISSIVE inbound builds its
// TLS and plaintext chains separately), each time on fresh messages.
//
// The control plane builds a proxy's inbound and outbound resources
// separately and shares the outbound ones between proxies with the same
// outbounds (internal/xds/server/share.go), so outbound hooks may read of
// the proxy only Mesh, Zone, Services, MTLS, TransparentProxy, VIPs, DNSPort and,
// in Policies, To and Single; inbound hooks only the inbounds, Name, Mesh,
// Services, MTLS, TransparentProxy, Address, AdminPort and, in Policies,
// Inbounds and Single.
//
// Outbound hooks get the outbound (out) whose resources they edit; when
// two outbounds of a proxy go to one service, the cluster, route and
// endpoints are built (and hooked) once, with the first of them. Inbound
// hooks get the inbound; the local cluster of an application port that
// several inbounds share is hooked once, with the first.
type Plugin struct {
	// Name is the policy kind, such as "MeshTimeout".
	Name string
	// Order sorts plugins (lower first; then by Name).
	Order int

	// OutboundCluster edits a cluster of an outbound (its EDS cluster, and
	// any other cluster a route plugin made for it).
	OutboundCluster func(p *proxymodel.Proxy, out *proxymodel.Outbound, c *clusterv3.Cluster) error
	// OutboundEndpoints edits the load assignment of an outbound cluster.
	OutboundEndpoints func(p *proxymodel.Proxy, out *proxymodel.Outbound, cla *endpointv3.ClusterLoadAssignment) error
	// OutboundRoute edits the route configuration of an HTTP outbound.
	OutboundRoute func(p *proxymodel.Proxy, out *proxymodel.Outbound, rc *routev3.RouteConfiguration) error
	// OutboundHCM edits the HTTP connection manager of an HTTP outbound's
	// listener (HTTP filters go before the router: insertHTTPFilter).
	OutboundHCM func(p *proxymodel.Proxy, out *proxymodel.Outbound, m *hcmv3.HttpConnectionManager) error
	// OutboundTCPProxy edits the tcp_proxy of a TCP outbound's listener.
	OutboundTCPProxy func(p *proxymodel.Proxy, out *proxymodel.Outbound, tp *tcpv3.TcpProxy) error
	// UpstreamTLS edits the TLS context of an mTLS outbound cluster.
	UpstreamTLS func(p *proxymodel.Proxy, out *proxymodel.Outbound, tc *tlsv3.UpstreamTlsContext) error

	// InboundCluster edits the local cluster an inbound forwards to.
	InboundCluster func(p *proxymodel.Proxy, in *proxymodel.Inbound, c *clusterv3.Cluster) error
	// InboundRoute edits the route configuration of an HTTP inbound.
	InboundRoute func(p *proxymodel.Proxy, in *proxymodel.Inbound, rc *routev3.RouteConfiguration) error
	// InboundHCM edits the HTTP connection manager of an HTTP inbound's
	// filter chain (HTTP filters go before the router: insertHTTPFilter).
	InboundHCM func(p *proxymodel.Proxy, in *proxymodel.Inbound, m *hcmv3.HttpConnectionManager) error
	// InboundTCPProxy edits the tcp_proxy of a TCP inbound's filter chain.
	InboundTCPProxy func(p *proxymodel.Proxy, in *proxymodel.Inbound, tp *tcpv3.TcpProxy) error
	// InboundNetworkFilters returns the network filters to put before the
	// terminal filter (tcp_proxy or HCM) of an inbound's filter chain,
	// after the ones already there (authorization comes first).
	InboundNetworkFilters func(p *proxymodel.Proxy, in *proxymodel.Inbound) ([]*listenerv3.Filter, error)
	// DownstreamTLS edits the TLS context of an mTLS inbound.
	DownstreamTLS func(p *proxymodel.Proxy, in *proxymodel.Inbound, tc *tlsv3.DownstreamTlsContext) error

	// ProxyInbound adds or edits resources that belong to the proxy as a
	// whole and depend only on what inbound hooks may read (a metrics
	// listener, the DNS listener, the inbound redirect listener). It runs
	// once, after every inbound is built, when Sidecar builds the inbound
	// part (PartInbound or PartAll); r is not sorted yet.
	ProxyInbound func(p *proxymodel.Proxy, r *Resources) error
	// ProxyOutbound is the same for resources that depend only on what
	// outbound hooks may read (the outbound redirect listener, a tracing
	// collector's cluster): it runs once, after every outbound is built,
	// when Sidecar builds the outbound part (PartOutbound or PartAll).
	ProxyOutbound func(p *proxymodel.Proxy, r *Resources) error
}

// plugins are the registered plugins, sorted by Order then Name.
var plugins []Plugin

// register adds a plugin; policy files call it from init.
func register(pl Plugin) {
	for _, other := range plugins {
		if other.Name == pl.Name {
			panic(fmt.Sprintf("build: plugin %q registered twice", pl.Name))
		}
	}
	plugins = append(plugins, pl)
	slices.SortStableFunc(plugins, func(a, b Plugin) int {
		return cmp.Or(cmp.Compare(a.Order, b.Order), cmp.Compare(a.Name, b.Name))
	})
}

// runHooks calls hook(pl) for every plugin in order, stopping at the
// first error, which it prefixes with the plugin's name.
func runHooks(hook func(pl *Plugin) error) error {
	for i := range plugins {
		if err := hook(&plugins[i]); err != nil {
			return fmt.Errorf("%s: %w", plugins[i].Name, err)
		}
	}
	return nil
}

// insertHTTPFilter puts f before the router (the last HTTP filter) of m.
func insertHTTPFilter(m *hcmv3.HttpConnectionManager, f *hcmv3.HttpFilter) {
	n := len(m.HttpFilters)
	if n == 0 {
		m.HttpFilters = []*hcmv3.HttpFilter{f}
		return
	}
	m.HttpFilters = slices.Insert(m.HttpFilters, n-1, f)
}
