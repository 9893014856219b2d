package runtime_test

import (
	"context"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	networkrbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// editDownstream edits the DownstreamTlsContext of a transport socket.
func editDownstream(t *testing.T, ts *corev3.TransportSocket, edit func(*tlsv3.DownstreamTlsContext)) {
	var d tlsv3.DownstreamTlsContext
	if err := ts.GetTypedConfig().UnmarshalTo(&d); err != nil {
		t.Fatal(err)
	}
	edit(&d)
	ts.ConfigType = &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, &d)}
}

func TestApplyAcceptsMTLSShapesBeforeSecretsArrive(t *testing.T) {
	rt := newRuntime(t)
	var cfgs []*xdsconfig.Config
	for _, in := range []inbound{
		{service: "a", http: true, mode: strict},
		{service: "b", mode: strict, rules: rbacRules(map[string][]*rbacv3.Principal{"p": {anyPrincipal()}})},
		{service: "c", http: true, mode: permissive, shadow: rbacRules(nil)},
		{service: "d", mode: permissive},
	} {
		in.addr, in.app = freeAddr(t), "127.0.0.1:8080"
		cfgs = append(cfgs, in.config(t, nil, nil))
	}
	out := outbound{self: "a", dest: "e", addr: freeAddr(t), upstream: "127.0.0.1:9", http: true, http2: true}
	cfgs = append(cfgs, out.config(t, nil, nil))
	apply(t, rt, merge(cfgs...))
	if got := len(rt.ListenerAddrs()); got != 5 {
		t.Fatalf("%d listeners", got)
	}
}

func TestApplyRejectsMTLS(t *testing.T) {
	ca := newCA(t, "ca")
	const addr = "127.0.0.1:10001"
	base := func() (inbound, *xdsconfig.Config) {
		in := inbound{service: "backend", addr: addr, app: "127.0.0.1:8080", http: true, mode: strict}
		return in, in.config(t, ca.pem(), ca.issue(t, spiffe("backend")))
	}
	withListener := func(edit func(*listenerv3.Listener)) *xdsconfig.Config {
		in, cfg := base()
		l := in.listener(t)
		edit(l)
		cfg.Listeners[l.GetName()] = l
		return cfg
	}
	withDownstream := func(edit func(*tlsv3.DownstreamTlsContext)) *xdsconfig.Config {
		return withListener(func(l *listenerv3.Listener) { editDownstream(t, l.FilterChains[0].TransportSocket, edit) })
	}
	withUpstream := func(edit func(*tlsv3.UpstreamTlsContext)) *xdsconfig.Config {
		out := outbound{self: "web", dest: "backend", addr: addr, upstream: "127.0.0.1:8080", http: true}
		cfg := out.config(t, nil, nil)
		c := cfg.Clusters["backend"]
		var u tlsv3.UpstreamTlsContext
		if err := c.TransportSocket.GetTypedConfig().UnmarshalTo(&u); err != nil {
			t.Fatal(err)
		}
		edit(&u)
		c.TransportSocket.ConfigType = &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, &u)}
		return cfg
	}
	tcpRBAC := func(edit func(*networkrbacv3.RBAC)) *xdsconfig.Config {
		in := inbound{service: "db", addr: addr, app: "127.0.0.1:8080", mode: strict, rules: rbacRules(map[string][]*rbacv3.Principal{"p": {anyPrincipal()}})}
		l := in.listener(t)
		f := l.FilterChains[0].Filters[0]
		var r networkrbacv3.RBAC
		if err := f.GetTypedConfig().UnmarshalTo(&r); err != nil {
			t.Fatal(err)
		}
		edit(&r)
		f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, &r)}
		cfg := in.config(t, ca.pem(), ca.issue(t, spiffe("db")))
		cfg.Listeners[l.GetName()] = l
		return cfg
	}
	const lname = `listener "inbound:127.0.0.1:10001": `
	tests := []struct {
		name string
		cfg  *xdsconfig.Config
		want string
	}{
		{"renegotiation", withUpstream(func(u *tlsv3.UpstreamTlsContext) { u.AllowRenegotiation = true }),
			`cluster "backend": field envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext.allow_renegotiation is not supported by trellis-dp (at transport_socket.typed_config.allow_renegotiation)`},
		{"TLS 1.0", withDownstream(func(d *tlsv3.DownstreamTlsContext) {
			d.CommonTlsContext.TlsParams.TlsMinimumProtocolVersion = tlsv3.TlsParameters_TLSv1_0
		}), lname + "filter_chains[0]: transport_socket: typed_config: common_tls_context: tls_params.tls_minimum_protocol_version TLSv1_0 is not supported"},
		{"SAN type", withDownstream(func(d *tlsv3.DownstreamTlsContext) {
			d.CommonTlsContext.GetCombinedValidationContext().DefaultValidationContext.MatchTypedSubjectAltNames[0].SanType = tlsv3.SubjectAltNameMatcher_EMAIL
		}), "match_typed_subject_alt_names[0]: san_type EMAIL is not supported (URI or DNS)"},
		{"two certificates", withDownstream(func(d *tlsv3.DownstreamTlsContext) {
			c := d.CommonTlsContext
			c.TlsCertificateSdsSecretConfigs = append(c.TlsCertificateSdsSecretConfigs, sds("identity:other"))
		}), "tls_certificate_sds_secret_configs: at most one certificate is supported, got 2"},
		{"sds not over ads", withDownstream(func(d *tlsv3.DownstreamTlsContext) {
			d.CommonTlsContext.TlsCertificateSdsSecretConfigs[0].SdsConfig = &corev3.ConfigSource{ResourceApiVersion: corev3.ApiVersion_V3}
		}), "tls_certificate_sds_secret_configs[0]: sds_config: config_source must be ads"},
		{"static secret reference", withDownstream(func(d *tlsv3.DownstreamTlsContext) {
			d.CommonTlsContext.TlsCertificateSdsSecretConfigs[0].SdsConfig = nil
		}), "sds_config is required (trellis-dp has no static secrets)"},
		{"inline certificate", withDownstream(func(d *tlsv3.DownstreamTlsContext) {
			d.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{{}}
		}), "field envoy.extensions.transport_sockets.tls.v3.CommonTlsContext.tls_certificates is not supported by trellis-dp (at filter_chains[0].transport_socket.typed_config.common_tls_context.tls_certificates)"},
		{"client certificate without CA", withDownstream(func(d *tlsv3.DownstreamTlsContext) {
			d.CommonTlsContext.ValidationContextType = nil
		}), "require_client_certificate needs common_tls_context.combined_validation_context"},
		{"downstream context on a cluster", func() *xdsconfig.Config {
			_, cfg := base()
			c := mtlsCluster(t, "web", "backend", false)
			c.TransportSocket = downstreamTLS(t, "web", false)
			cfg.Clusters["backend"] = c
			return cfg
		}(), `cluster "backend": transport_socket: typed_config type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext is not an UpstreamTlsContext`},
		{"tls chain without inspector", withListener(func(l *listenerv3.Listener) {
			l.FilterChains[0].FilterChainMatch = &listenerv3.FilterChainMatch{TransportProtocol: "tls"}
		}), `filter_chains[0].filter_chain_match.transport_protocol "tls" needs the envoy.filters.listener.tls_inspector listener filter`},
		{"unknown transport protocol", withListener(func(l *listenerv3.Listener) {
			l.FilterChains[0].FilterChainMatch = &listenerv3.FilterChainMatch{TransportProtocol: "quic"}
		}), `filter_chain_match.transport_protocol "quic" is not supported (tls or raw_buffer)`},
		{"other listener filter", withListener(func(l *listenerv3.Listener) {
			l.ListenerFilters = []*listenerv3.ListenerFilter{{Name: "envoy.filters.listener.http_inspector", ConfigType: &listenerv3.ListenerFilter_TypedConfig{
				TypedConfig: &anypb.Any{TypeUrl: "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"}}}}
		}), "typed_config type type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector is not supported by trellis-dp (at listener_filters[0].typed_config)"},
		{"bad certificate PEM", func() *xdsconfig.Config {
			_, cfg := base()
			s := proto.Clone(cfg.Secrets["identity:backend"]).(*tlsv3.Secret)
			s.GetTlsCertificate().CertificateChain = &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: []byte("nope")}}
			cfg.Secrets["identity:backend"] = s
			return cfg
		}(), `secret "identity:backend": tls_certificate: tls: failed to find any PEM data in certificate input`},
		{"empty CA bundle", func() *xdsconfig.Config {
			_, cfg := base()
			cfg.Secrets["mesh_ca:default"] = caSecret([]byte("\n"))
			return cfg
		}(), `secret "mesh_ca:default": validation_context.trusted_ca: no PEM certificate found`},
		{"secret field", func() *xdsconfig.Config {
			_, cfg := base()
			s := proto.Clone(cfg.Secrets["mesh_ca:default"]).(*tlsv3.Secret)
			s.GetValidationContext().Crl = &corev3.DataSource{}
			cfg.Secrets["mesh_ca:default"] = s
			return cfg
		}(), `secret "mesh_ca:default": field envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext.crl is not supported by trellis-dp (at validation_context.crl)`},
		{"rbac permission", tcpRBAC(func(r *networkrbacv3.RBAC) {
			r.Rules.Policies["p"].Permissions[0] = &rbacv3.Permission{Rule: &rbacv3.Permission_DestinationPort{DestinationPort: 80}}
		}), "field envoy.config.rbac.v3.Permission.destination_port is not supported by trellis-dp"},
		{"rbac permission any false", tcpRBAC(func(r *networkrbacv3.RBAC) {
			r.Rules.Policies["p"].Permissions[0] = &rbacv3.Permission{Rule: &rbacv3.Permission_Any{Any: false}}
		}), `filters[0] ("envoy.filters.network.rbac"): rules: policies["p"].permissions[0]: only any: true is supported`},
		{"rbac principal source_ip", tcpRBAC(func(r *networkrbacv3.RBAC) {
			r.Rules.Policies["p"].Principals[0] = &rbacv3.Principal{Identifier: &rbacv3.Principal_SourceIp{SourceIp: &corev3.CidrRange{AddressPrefix: "10.0.0.0"}}}
		}), "field envoy.config.rbac.v3.Principal.source_ip is not supported by trellis-dp"},
		{"rbac action LOG", tcpRBAC(func(r *networkrbacv3.RBAC) { r.Rules.Action = rbacv3.RBAC_LOG }),
			"rules: action LOG is not supported (ALLOW or DENY)"},
		{"rbac without stat_prefix", tcpRBAC(func(r *networkrbacv3.RBAC) { r.StatPrefix = "" }),
			`filters[0] ("envoy.filters.network.rbac"): stat_prefix is required`},
		{"rbac after tcp_proxy", withListener(func(l *listenerv3.Listener) {
			fc := tcpRBAC(func(*networkrbacv3.RBAC) {}).Listeners["inbound:"+addr].FilterChains[0]
			fc.Filters = []*listenerv3.Filter{fc.Filters[1], fc.Filters[0]}
			l.FilterChains[0] = fc
		}), "tcp_proxy and http_connection_manager must be the last network filter"},
		{"rbac filter last", withListener(func(l *listenerv3.Listener) {
			fc := tcpRBAC(func(*networkrbacv3.RBAC) {}).Listeners["inbound:"+addr].FilterChains[0]
			fc.Filters = fc.Filters[:1]
			l.FilterChains[0] = fc
		}), "the last network filter must be tcp_proxy or http_connection_manager"},
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
			if rt.Ready() {
				t.Fatal("a rejected config made the runtime ready")
			}
		})
	}
}
