package runtime_test

import (
	"context"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

func TestApplyRejects(t *testing.T) {
	const addr = "127.0.0.1:10001"
	const lname = `listener "outbound:127.0.0.1:10001": `
	valid := func() *xdsconfig.Config {
		return configOf(httpListener(t, addr, "web"), routeConfig("web", nil), edsCluster(t, "web", false), cla("web", "127.0.0.1:8080"))
	}
	withListener := func(l *listenerv3.Listener) *xdsconfig.Config {
		cfg := valid()
		cfg.Listeners[l.GetName()] = l
		return cfg
	}
	withHCM := func(edit func(*hcmv3.HttpConnectionManager)) *xdsconfig.Config {
		h := hcm(t, "web")
		h.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: routeConfig("web", nil)}
		edit(h)
		return withListener(listenerWith(t, "outbound:"+addr, addr, "envoy.filters.network.http_connection_manager", h))
	}
	withRoute := func(edit func(*routev3.Route)) *xdsconfig.Config {
		cfg := valid()
		rc := routeConfig("web", nil)
		edit(rc.GetVirtualHosts()[0].GetRoutes()[0])
		cfg.Routes[rc.GetName()] = rc
		return cfg
	}
	withCluster := func(edit func(*clusterv3.Cluster)) *xdsconfig.Config {
		cfg := valid()
		c := edsCluster(t, "web", false)
		edit(c)
		cfg.Clusters["web"] = c
		return cfg
	}
	tests := []struct {
		name string
		cfg  *xdsconfig.Config
		want string
	}{
		{"field inside typed_config", withListener(listenerWith(t, "outbound:"+addr, addr, "envoy.filters.network.tcp_proxy", &tcpproxyv3.TcpProxy{
			StatPrefix: "x", ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: "web"}, MaxDownstreamConnectionDuration: durationpb.New(0),
		})), lname + "field envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.max_downstream_connection_duration is not supported by trellis-dp (at filter_chains[0].filters[0].typed_config.max_downstream_connection_duration)"},
		{"unknown network filter type", func() *xdsconfig.Config {
			l := httpListener(t, addr, "web")
			l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: &anypb.Any{TypeUrl: "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy"}}
			return withListener(l)
		}(), lname + "typed_config type type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy is not supported by trellis-dp (at filter_chains[0].filters[0].typed_config)"},
		{"filter_chain_match", func() *xdsconfig.Config {
			l := httpListener(t, addr, "web")
			l.FilterChains[0].FilterChainMatch = &listenerv3.FilterChainMatch{ApplicationProtocols: []string{"x"}}
			return withListener(l)
		}(), lname + "field envoy.config.listener.v3.FilterChainMatch.application_protocols is not supported by trellis-dp (at filter_chains[0].filter_chain_match.application_protocols)"},
		{"duplicate listener address", func() *xdsconfig.Config {
			cfg := valid()
			l := tcpListener(t, addr, "web")
			l.Name = "other"
			cfg.Listeners["other"] = l
			return cfg
		}(), `listener "outbound:127.0.0.1:10001": address 127.0.0.1:10001 is also the address of listener "other"`},
		{"hostname socket address", func() *xdsconfig.Config {
			l := httpListener(t, addr, "web")
			l.Address.GetSocketAddress().Address = "localhost"
			return withListener(l)
		}(), lname + `address: socket_address.address "localhost" is not an IP address`},
		{"port out of range", func() *xdsconfig.Config {
			l := httpListener(t, addr, "web")
			l.Address.GetSocketAddress().PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: 70000}
			return withListener(l)
		}(), lname + "address: socket_address.port_value 70000 is out of range"},
		{"empty tcp_proxy cluster", withListener(listenerWith(t, "outbound:"+addr, addr, "envoy.filters.network.tcp_proxy", &tcpproxyv3.TcpProxy{
			StatPrefix: "x", ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: ""},
		})), "cluster or weighted_clusters is required (the cluster name is empty)"},
		{"router as network filter", withListener(listenerWith(t, "outbound:"+addr, addr, "x", &routerv3.Router{})),
			"typed_config type.googleapis.com/envoy.extensions.filters.http.router.v3.Router is not a network filter"},
		{"two filter chains", func() *xdsconfig.Config {
			l := httpListener(t, addr, "web")
			l.FilterChains = append(l.FilterChains, l.FilterChains[0])
			return withListener(l)
		}(), "filter_chains[1]: filter_chain_match is the same as that of filter_chains[0]"},
		{"route without action", withRoute(func(r *routev3.Route) { r.Action = nil }),
			`route_configuration "outbound:web": virtual_hosts[0] ("web"): routes[0]: an action is required`},
		{"route without path match", withRoute(func(r *routev3.Route) { r.Match = &routev3.RouteMatch{} }),
			"routes[0]: match: one of prefix, path, path_separated_prefix or safe_regex is required"},
		{"bad regex", withRoute(func(r *routev3.Route) {
			r.Match = &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "(("}}}
		}), "match: safe_regex: regex \"((\""},
		{"unsupported route field", withRoute(func(r *routev3.Route) {
			r.GetRoute().HostRewriteSpecifier = &routev3.RouteAction_AutoHostRewrite{AutoHostRewrite: wrapperspb.Bool(true)}
		}), `route_configuration "outbound:web": field envoy.config.route.v3.RouteAction.auto_host_rewrite is not supported by trellis-dp (at virtual_hosts[0].routes[0].route.auto_host_rewrite)`},
		{"duplicate domain", func() *xdsconfig.Config {
			cfg := valid()
			rc := routeConfig("web", nil)
			vh2 := routeConfig("web", nil).GetVirtualHosts()[0]
			vh2.Name = "second"
			rc.VirtualHosts = append(rc.VirtualHosts, vh2)
			cfg.Routes[rc.GetName()] = rc
			return cfg
		}(), `domain "*" is also in virtual host "web"`},
		{"HTTP filter other than router", withHCM(func(h *hcmv3.HttpConnectionManager) {
			h.HttpFilters = append([]*hcmv3.HttpFilter{{Name: "envoy.filters.http.cors", ConfigType: &hcmv3.HttpFilter_TypedConfig{
				TypedConfig: &anypb.Any{TypeUrl: "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}}}}, h.HttpFilters...)
		}), "typed_config type type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors is not supported by trellis-dp (at filter_chains[0].filters[0].typed_config.http_filters[0].typed_config)"},
		{"no router", withHCM(func(h *hcmv3.HttpConnectionManager) { h.HttpFilters = nil }), "http_filters must end with envoy.filters.http.router"},
		{"codec HTTP1", withHCM(func(h *hcmv3.HttpConnectionManager) { h.CodecType = hcmv3.HttpConnectionManager_HTTP1 }), "codec_type HTTP1 is not supported (AUTO only)"},
		{"no routes", withHCM(func(h *hcmv3.HttpConnectionManager) { h.RouteSpecifier = nil }), "rds or route_config is required"},
		{"rds not over ads", withHCM(func(h *hcmv3.HttpConnectionManager) {
			h.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "x", ConfigSource: &corev3.ConfigSource{ResourceApiVersion: corev3.ApiVersion_V3}}}
		}), "rds: config_source must be ads"},
		{"lb policy", withCluster(func(c *clusterv3.Cluster) { c.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED }),
			`cluster "web": lb_policy CLUSTER_PROVIDED needs type ORIGINAL_DST, not EDS`},
		{"ring size", withCluster(func(c *clusterv3.Cluster) {
			c.LbPolicy = clusterv3.Cluster_RING_HASH
			c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{
				MinimumRingSize: wrapperspb.UInt64(2048), MaximumRingSize: wrapperspb.UInt64(1024)}}
		}), `cluster "web": ring_hash_lb_config.minimum_ring_size 2048 is larger than maximum_ring_size 1024`},
		{"cluster type", withCluster(func(c *clusterv3.Cluster) {
			c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
			c.EdsClusterConfig = nil
		}), `cluster "web": type STRICT_DNS is not supported (STATIC, EDS or ORIGINAL_DST only)`},
		{"cluster field", withCluster(func(c *clusterv3.Cluster) { c.PerConnectionBufferLimitBytes = wrapperspb.UInt32(1024) }),
			`cluster "web": field envoy.config.cluster.v3.Cluster.per_connection_buffer_limit_bytes is not supported by trellis-dp`},
		{"endpoint hostname", func() *xdsconfig.Config {
			cfg := valid()
			c := cla("web", "127.0.0.1:8080")
			c.Endpoints[0].LbEndpoints[0].GetEndpoint().Address.GetSocketAddress().Address = "backend.local"
			cfg.Endpoints["web"] = c
			return cfg
		}(), `cluster_load_assignment "web": endpoints[0].lb_endpoints[0].endpoint.address: socket_address.address "backend.local" is not an IP address`},
		{"secret", func() *xdsconfig.Config {
			cfg := valid()
			cfg.Secrets["cert"] = &tlsv3.Secret{Name: "cert"}
			return cfg
		}(), `secret "cert": tls_certificate or validation_context is required`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRuntime(t)
			err := rt.Apply(context.Background(), tc.cfg)
			if err == nil {
				t.Fatalf("Apply succeeded, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
			if rt.Ready() || len(rt.Stats()) > 2 {
				t.Fatalf("a rejected config changed the runtime: ready=%v stats=%v", rt.Ready(), rt.Stats())
			}
		})
	}
}

func TestApplyAcceptsContractShapes(t *testing.T) {
	rt := newRuntime(t)
	in, out := freeAddr(t), freeAddr(t)
	inbound := listenerWith(t, "inbound:"+in, in, "envoy.filters.network.http_connection_manager", func() *hcmv3.HttpConnectionManager {
		h := hcm(t, "localhost_8080")
		h.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name: "inbound:web",
			VirtualHosts: []*routev3.VirtualHost{{Name: "web", Domains: []string{"*"}, Routes: []*routev3.Route{{
				Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "localhost:8080"}}},
			}}}},
		}}
		return h
	}())
	inbound.TrafficDirection = corev3.TrafficDirection_INBOUND
	cfg := configOf(inbound, staticCluster("localhost:8080", "127.0.0.1:8080"),
		tcpListener(t, out, "db"), edsCluster(t, "db", false), cla("db", "127.0.0.1:5432"),
		edsCluster(t, "grpc", true), cla("grpc", "127.0.0.1:9000"))
	apply(t, rt, cfg)
	if got := len(rt.ListenerAddrs()); got != 2 {
		t.Fatalf("%d listeners", got)
	}
}
