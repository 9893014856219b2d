package allowlist_test

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	// Register every type the allow-list names.
	_ "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/allowlist"
)

func TestEveryAllowedFieldExists(t *testing.T) {
	for _, name := range allowlist.AllowedFields() {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, ok := d.(protoreflect.FieldDescriptor); !ok {
			t.Errorf("%s is a %T, not a field", name, d)
		}
	}
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestCheck(t *testing.T) {
	tcp := &tcpproxyv3.TcpProxy{
		StatPrefix:                      "x",
		ClusterSpecifier:                &tcpproxyv3.TcpProxy_Cluster{Cluster: "c"},
		MaxDownstreamConnectionDuration: durationpb.New(1),
	}
	l := &listenerv3.Listener{
		Name:                          "l",
		PerConnectionBufferLimitBytes: wrapperspb.UInt32(1),
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 1},
		}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{
			{Name: "a", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, tcp)}},
			{Name: "b", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: &anypb.Any{TypeUrl: "type.googleapis.com/foo.Bar"}}},
		}}},
	}
	errs := allowlist.Check(l)
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		"field envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.max_downstream_connection_duration is not supported by trellis-dp (at filter_chains[0].filters[0].typed_config.max_downstream_connection_duration)",
		"typed_config type type.googleapis.com/foo.Bar is not supported by trellis-dp (at filter_chains[0].filters[1].typed_config)",
		"field envoy.config.listener.v3.Listener.per_connection_buffer_limit_bytes is not supported by trellis-dp",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCheckMapOfAny(t *testing.T) {
	opts := &upstreamhttpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{
				MaxConcurrentStreams: wrapperspb.UInt32(10),
			}},
		}},
	}
	c := &clusterv3.Cluster{Name: "c", TypedExtensionProtocolOptions: map[string]*anypb.Any{
		"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(t, opts),
	}}
	errs := allowlist.Check(c)
	if len(errs) != 1 || errs[0].Field != "envoy.config.core.v3.Http2ProtocolOptions.max_concurrent_streams" ||
		errs[0].Path != `typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].explicit_http_config.http2_protocol_options.max_concurrent_streams` {
		t.Fatalf("got %v", errs)
	}
}
