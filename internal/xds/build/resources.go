package build

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// httpProtocolOptionsKey is the typed_extension_protocol_options key of
// upstream HTTP settings.
const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

func anyOf(m proto.Message) (*anypb.Any, error) {
	a, err := anypb.New(m)
	if err != nil {
		return nil, fmt.Errorf("packing %T: %w", m, err)
	}
	return a, nil
}

func socketAddress(addr string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       addr,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

// tcpProxyFilter is the tcp_proxy network filter to a cluster; edit (when
// not nil) runs on it before it is packed.
func tcpProxyFilter(cluster string, edit func(*tcpv3.TcpProxy) error) (*listenerv3.Filter, error) {
	tp := &tcpv3.TcpProxy{
		StatPrefix:       cluster,
		ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: cluster},
	}
	if edit != nil {
		if err := edit(tp); err != nil {
			return nil, err
		}
	}
	tcp, err := anyOf(tp)
	if err != nil {
		return nil, err
	}
	return &listenerv3.Filter{Name: wellknown.TCPProxy, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: tcp}}, nil
}

// routerFilter is the HTTP router filter, the last of every HCM.
func routerFilter() (*hcmv3.HttpFilter, error) {
	router, err := anyOf(&routerv3.Router{})
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpFilter{Name: wellknown.Router, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router}}, nil
}

// hcm returns an HTTP connection manager that takes its routes over RDS
// and runs filters (the router alone when filters is nil).
func hcm(statPrefix, routeName string, filters []*hcmv3.HttpFilter) (*hcmv3.HttpConnectionManager, error) {
	if filters == nil {
		router, err := routerFilter()
		if err != nil {
			return nil, err
		}
		filters = []*hcmv3.HttpFilter{router}
	}
	return &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix,
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: routeName,
			ConfigSource:    adsSource(),
		}},
		HttpFilters: filters,
	}, nil
}

// hcmFilter is the HTTP connection manager network filter; edit (when not
// nil) runs on the manager before it is packed.
func hcmFilter(statPrefix, routeName string, filters []*hcmv3.HttpFilter, edit func(*hcmv3.HttpConnectionManager) error) (*listenerv3.Filter, error) {
	m, err := hcm(statPrefix, routeName, filters)
	if err != nil {
		return nil, err
	}
	if edit != nil {
		if err := edit(m); err != nil {
			return nil, err
		}
	}
	cfg, err := anyOf(m)
	if err != nil {
		return nil, err
	}
	return &listenerv3.Filter{Name: wellknown.HTTPConnectionManager, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: cfg}}, nil
}

// singleChainListener is a listener with one filter chain of one filter.
func singleChainListener(name, addr string, port uint32, dir corev3.TrafficDirection, f *listenerv3.Filter) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:             name,
		Address:          socketAddress(addr, port),
		TrafficDirection: dir,
		FilterChains:     []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{f}}},
	}
}

func tcpListener(name, addr string, port uint32, dir corev3.TrafficDirection, cluster string, edit func(*tcpv3.TcpProxy) error) (*listenerv3.Listener, error) {
	f, err := tcpProxyFilter(cluster, edit)
	if err != nil {
		return nil, err
	}
	return singleChainListener(name, addr, port, dir, f), nil
}

func httpListener(name, addr string, port uint32, dir corev3.TrafficDirection, routeName string, edit func(*hcmv3.HttpConnectionManager) error) (*listenerv3.Listener, error) {
	f, err := hcmFilter(routeName, routeName, nil, edit)
	if err != nil {
		return nil, err
	}
	return singleChainListener(name, addr, port, dir, f), nil
}

func routeConfig(name, vhost, cluster string) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    vhost,
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
					Timeout:          durationpb.New(routeTimeout),
				}},
			}},
		}},
	}
}

// withProtocol adds HTTP/2 upstream options for http2 and grpc services.
func withProtocol(c *clusterv3.Cluster, protocol string) *clusterv3.Cluster {
	if !isHTTP2(protocol) {
		return c
	}
	opts, err := anyOf(&httpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
				},
			},
		},
	})
	if err == nil {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpProtocolOptionsKey: opts}
	}
	return c
}

func staticCluster(name, addr string, port uint32, protocol string) *clusterv3.Cluster {
	return withProtocol(&clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(connectTimeout),
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{
				LbEndpoints: []*endpointv3.LbEndpoint{lbEndpoint(addr, port, 0)},
			}},
		},
	}, protocol)
}

func edsCluster(service, protocol string) *clusterv3.Cluster {
	return withProtocol(&clusterv3.Cluster{
		Name:                 service,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: service},
		ConnectTimeout:       durationpb.New(connectTimeout),
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
	}, protocol)
}

func lbEndpoint(addr string, port, weight uint32) *endpointv3.LbEndpoint {
	ep := &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(addr, port)}},
		HealthStatus:   corev3.HealthStatus_HEALTHY,
	}
	if weight > 0 {
		ep.LoadBalancingWeight = wrapperspb.UInt32(weight)
	}
	return ep
}

// loadAssignment groups endpoints by zone, zones sorted.
func loadAssignment(service string, eps []proxymodel.Endpoint) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: service}
	byZone := map[string]*endpointv3.LocalityLbEndpoints{}
	var zones []string
	for _, ep := range eps {
		loc, ok := byZone[ep.Zone]
		if !ok {
			// Every group names its locality, even with no zone: gRPC's
			// xDS client refuses localities without one.
			loc = &endpointv3.LocalityLbEndpoints{Locality: &corev3.Locality{Zone: ep.Zone}}
			byZone[ep.Zone] = loc
			zones = append(zones, ep.Zone)
		}
		loc.LbEndpoints = append(loc.LbEndpoints, lbEndpoint(ep.Address, ep.Port, ep.Weight))
		// Localities carry the sum of their endpoints' weights: gRPC's xDS
		// client ignores localities without a weight.
		loc.LoadBalancingWeight = wrapperspb.UInt32(loc.GetLoadBalancingWeight().GetValue() + max(ep.Weight, 1))
	}
	for _, z := range sortedStrings(zones) {
		cla.Endpoints = append(cla.Endpoints, byZone[z])
	}
	return cla
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
