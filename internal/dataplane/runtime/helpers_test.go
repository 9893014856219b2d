package runtime_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime"
	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// The builders below produce resources exactly as docs/xds-contract.md
// says trellis-cp sends them.

func mustAny(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func socketAddress(hostport string) *corev3.Address {
	ap := netip.MustParseAddrPort(hostport)
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       ap.Addr().String(),
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(ap.Port())},
	}}}
}

func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

func listenerWith(t testing.TB, name, addr, filterName string, typed proto.Message) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:             name,
		Address:          socketAddress(addr),
		TrafficDirection: corev3.TrafficDirection_OUTBOUND,
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name:       filterName,
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, typed)},
		}}}},
	}
}

// tcpListener is an outbound tcp_proxy listener to cluster.
func tcpListener(t testing.TB, addr, cluster string) *listenerv3.Listener {
	return listenerWith(t, "outbound:"+addr, addr, "envoy.filters.network.tcp_proxy", &tcpproxyv3.TcpProxy{
		StatPrefix:       cluster,
		ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: cluster},
	})
}

func hcm(t testing.TB, statPrefix string) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix,
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		HttpFilters: []*hcmv3.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})},
		}},
	}
}

// httpListener is an outbound HCM listener whose routes come from RDS.
func httpListener(t testing.TB, addr, service string) *listenerv3.Listener {
	h := hcm(t, service)
	h.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
		RouteConfigName: "outbound:" + service,
		ConfigSource:    adsSource(),
	}}
	return listenerWith(t, "outbound:"+addr, addr, "envoy.filters.network.http_connection_manager", h)
}

// routeConfig routes everything to cluster with the given timeout (nil:
// Envoy's default).
func routeConfig(service string, timeout *durationpb.Duration) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{
		Name: "outbound:" + service,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    service,
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: service},
					Timeout:          timeout,
				}},
			}},
		}},
	}
}

// edsCluster is an outbound EDS cluster; http2 adds the upstream HTTP/2
// protocol options of http2/grpc services.
func edsCluster(t testing.TB, service string, http2 bool) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name:                 service,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: service},
		ConnectTimeout:       durationpb.New(time.Second),
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
	}
	if http2 {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(t, &upstreamhttpv3.HttpProtocolOptions{
				UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
					ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
						ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
							Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
						},
					},
				},
			}),
		}
	}
	return c
}

// staticCluster is an inbound STATIC cluster to the application.
func staticCluster(name, addr string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(time.Second),
		LoadAssignment:       cla(name, addr),
	}
}

// lbEndpoint is an endpoint with its health status and weight (0: unset).
type lbEndpoint struct {
	addr   string
	health corev3.HealthStatus
	weight uint32
}

func cla(service string, addrs ...string) *endpointv3.ClusterLoadAssignment {
	eps := make([]lbEndpoint, len(addrs))
	for i, a := range addrs {
		eps[i] = lbEndpoint{addr: a, health: corev3.HealthStatus_HEALTHY}
	}
	return claWith(service, eps...)
}

func claWith(service string, eps ...lbEndpoint) *endpointv3.ClusterLoadAssignment {
	lle := &endpointv3.LocalityLbEndpoints{Locality: &corev3.Locality{Zone: "zone-1"}}
	for _, e := range eps {
		lbe := &endpointv3.LbEndpoint{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(e.addr)}},
			HealthStatus:   e.health,
		}
		if e.weight > 0 {
			lbe.LoadBalancingWeight = wrapperspb.UInt32(e.weight)
		}
		lle.LbEndpoints = append(lle.LbEndpoints, lbe)
	}
	return &endpointv3.ClusterLoadAssignment{ClusterName: service, Endpoints: []*endpointv3.LocalityLbEndpoints{lle}}
}

// configOf gathers resources into a Config keyed by name.
func configOf(resources ...proto.Message) *xdsconfig.Config {
	cfg := xdsconfig.New()
	for _, r := range resources {
		switch r := r.(type) {
		case *listenerv3.Listener:
			cfg.Listeners[r.GetName()] = r
		case *routev3.RouteConfiguration:
			cfg.Routes[r.GetName()] = r
		case *clusterv3.Cluster:
			cfg.Clusters[r.GetName()] = r
		case *endpointv3.ClusterLoadAssignment:
			cfg.Endpoints[r.GetClusterName()] = r
		case *tlsv3.Secret:
			cfg.Secrets[r.GetName()] = r
		default:
			panic(fmt.Sprintf("unexpected %T", r))
		}
	}
	return cfg
}

// newRuntime returns a Runtime closed at the end of the test.
func newRuntime(t testing.TB, opts ...runtime.Option) *runtime.Runtime {
	t.Helper()
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	rt := runtime.New(log, opts...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return rt
}

func apply(t testing.TB, rt *runtime.Runtime, cfg *xdsconfig.Config) {
	t.Helper()
	if err := rt.Apply(context.Background(), cfg); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// freeAddr returns a 127.0.0.1 address that was free a moment ago, never
// the same one twice in a test binary (the kernel may hand out a port that
// was just closed again, and two listeners of one config on the same
// address would merge into one).
func freeAddr(t testing.TB) string {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		handedOutMu.Lock()
		seen := handedOut[addr]
		handedOut[addr] = true
		handedOutMu.Unlock()
		if !seen {
			return addr
		}
	}
}

var (
	handedOutMu sync.Mutex
	handedOut   = map[string]bool{}
)

// echoServer echoes every TCP connection, half-closing after EOF.
func echoServer(t testing.TB, prefix string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if prefix != "" {
					if _, err := io.WriteString(c, prefix); err != nil {
						return
					}
				}
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return l.Addr().String()
}

// httpBackend serves handler on 127.0.0.1 (HTTP/1.1 and h2c).
func httpBackend(t testing.TB, handler http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: handler, Protocols: p}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// idBackend answers with its id, the protocol it was reached over and a
// few request headers.
func idBackend(t testing.TB, id string) string {
	return httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", id)
		w.Header().Set("X-Proto", strconv.Itoa(r.ProtoMajor))
		w.Header().Set("X-Seen-Request-Id", r.Header.Get("X-Request-Id"))
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Seen-Path", r.URL.RequestURI())
		_, _ = io.WriteString(w, id)
	}))
}

// h1Client is an HTTP/1.1 client with a fresh connection pool.
func h1Client(t testing.TB) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// h2cClient speaks HTTP/2 with prior knowledge.
func h2cClient(t testing.TB) *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get returns the response (body read and closed) and its body.
func get(t testing.TB, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp, string(b)
}
