package runtime_test

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	originaldstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// tproxyChain is a tcp_proxy filter chain to cluster matching prefix
// (empty: any address) and port (0: any).
func tproxyChain(t *testing.T, cluster, prefix string, port uint32) *listenerv3.FilterChain {
	fc := &listenerv3.FilterChain{Filters: []*listenerv3.Filter{{
		Name: "envoy.filters.network.tcp_proxy",
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, &tcpproxyv3.TcpProxy{
			StatPrefix: cluster, ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: cluster},
		})},
	}}}
	if prefix != "" || port != 0 {
		fc.FilterChainMatch = &listenerv3.FilterChainMatch{}
		if prefix != "" {
			fc.FilterChainMatch.PrefixRanges = []*corev3.CidrRange{{AddressPrefix: prefix, PrefixLen: wrapperspb.UInt32(32)}}
		}
		if port != 0 {
			fc.FilterChainMatch.DestinationPort = wrapperspb.UInt32(port)
		}
	}
	return fc
}

func originalDstCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
		ConnectTimeout:       durationpb.New(time.Second),
		LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED,
	}
}

// A redirect listener picks filter chains by the connection's destination
// (here its local address: nothing redirects it outside a network
// namespace), falls back to the default chain, and an ORIGINAL_DST
// cluster refuses a connection that was not redirected rather than
// connect the proxy to itself.
func TestRedirectListenerMatchesDestination(t *testing.T) {
	a, b := echoServer(t, "A:"), echoServer(t, "B:")
	port := strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	rt := newRuntime(t)
	l := &listenerv3.Listener{
		Name:             "outbound:passthrough:ipv4",
		Address:          socketAddress("0.0.0.0:" + port),
		TrafficDirection: corev3.TrafficDirection_OUTBOUND,
		ListenerFilters: []*listenerv3.ListenerFilter{{
			Name:       "envoy.filters.listener.original_dst",
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(t, &originaldstv3.OriginalDst{})},
		}},
		FilterChains: []*listenerv3.FilterChain{
			tproxyChain(t, "a", "127.0.0.2", 0),
			tproxyChain(t, "passthrough", "127.0.0.3", 0),
		},
		DefaultFilterChain: tproxyChain(t, "b", "", 0),
	}
	apply(t, rt, configOf(l, edsCluster(t, "a", false), cla("a", a), edsCluster(t, "b", false), cla("b", b),
		originalDstCluster("passthrough")))

	for _, c := range []struct{ host, want string }{{"127.0.0.2", "A:"}, {"127.0.0.1", "B:"}} {
		conn := dialEcho(t, c.host+":"+port)
		r := bufio.NewReader(conn)
		if got := roundTrip(t, conn, r, "hi"); got != c.want+"hi" {
			t.Errorf("via %s: %q, want %q", c.host, got, c.want+"hi")
		}
	}
	conn := dialEcho(t, "127.0.0.3:"+port)
	_, _ = io.WriteString(conn, "hi\n")
	if n, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatalf("ORIGINAL_DST without a redirect: read %d bytes, want the connection closed", n)
	}

	// Without the default chain, unmatched connections are closed.
	l.DefaultFilterChain = nil
	apply(t, rt, configOf(l, edsCluster(t, "a", false), cla("a", a), edsCluster(t, "b", false), cla("b", b),
		originalDstCluster("passthrough")))
	conn = dialEcho(t, "127.0.0.1:"+port)
	_, _ = io.WriteString(conn, "hi\n")
	if n, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatalf("no chain matches: read %d bytes, want the connection closed", n)
	}
}

// What a redirect listener or an ORIGINAL_DST cluster may not have is
// refused with the field named.
func TestRedirectListenerRejects(t *testing.T) {
	base := func() *listenerv3.Listener {
		return &listenerv3.Listener{
			Name:    "outbound:passthrough:ipv4",
			Address: socketAddress(freeAddr(t)),
			FilterChains: []*listenerv3.FilterChain{
				tproxyChain(t, "a", "240.0.0.1", 80),
			},
		}
	}
	for _, c := range []struct {
		name string
		edit func(l *listenerv3.Listener, c *clusterv3.Cluster)
		want string
	}{
		{"same match twice", func(l *listenerv3.Listener, _ *clusterv3.Cluster) {
			l.FilterChains = append(l.FilterChains, tproxyChain(t, "a", "240.0.0.1", 80))
		}, "filter_chains[1]: filter_chain_match is the same as that of filter_chains[0]"},
		{"port out of range", func(l *listenerv3.Listener, _ *clusterv3.Cluster) {
			l.FilterChains[0].FilterChainMatch.DestinationPort = wrapperspb.UInt32(70000)
		}, "filter_chain_match.destination_port 70000 is out of range"},
		{"bad prefix", func(l *listenerv3.Listener, _ *clusterv3.Cluster) {
			l.FilterChains[0].FilterChainMatch.PrefixRanges[0].AddressPrefix = "backend"
		}, "filter_chain_match.prefix_ranges[0].address_prefix"},
		{"prefix too long", func(l *listenerv3.Listener, _ *clusterv3.Cluster) {
			l.FilterChains[0].FilterChainMatch.PrefixRanges[0].PrefixLen = wrapperspb.UInt32(33)
		}, "prefix_len 33 is longer than the address"},
		{"default chain with a match", func(l *listenerv3.Listener, _ *clusterv3.Cluster) {
			l.DefaultFilterChain = tproxyChain(t, "a", "240.0.0.2", 0)
		}, "default_filter_chain: filter_chain_match"},
		{"original_dst twice", func(l *listenerv3.Listener, _ *clusterv3.Cluster) {
			f := &listenerv3.ListenerFilter{Name: "envoy.filters.listener.original_dst"}
			l.ListenerFilters = []*listenerv3.ListenerFilter{f, f}
		}, "listener_filters[1]: envoy.filters.listener.original_dst is already configured"},
		{"original dst with members", func(_ *listenerv3.Listener, c *clusterv3.Cluster) {
			c.LoadAssignment = cla("passthrough", "127.0.0.1:1")
		}, `cluster "passthrough": load_assignment is only for type STATIC`},
		{"original dst round robin", func(_ *listenerv3.Listener, c *clusterv3.Cluster) {
			c.LbPolicy = clusterv3.Cluster_ROUND_ROBIN
		}, `cluster "passthrough": type ORIGINAL_DST needs lb_policy CLUSTER_PROVIDED`},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, cl := base(), originalDstCluster("passthrough")
			c.edit(l, cl)
			err := newRuntime(t).Apply(context.Background(), configOf(l, edsCluster(t, "a", false), cla("a", "127.0.0.1:1"), cl))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Apply error %v, want it to contain %q", err, c.want)
			}
		})
	}
}
