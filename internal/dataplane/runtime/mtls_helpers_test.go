package runtime_test

import (
	"context"
	"crypto/tls"
	"math/big"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	httprbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	networkrbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime"
	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// The builders below produce the mTLS resources of docs/xds-contract.md
// ("mTLS, identity and authorization") for mesh "default".

const mesh = "default"

func spiffe(service string) string { return "spiffe://" + mesh + "/" + service }

func sds(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: adsSource()}
}

func identitySecret(service string, id *identity) *tlsv3.Secret {
	return &tlsv3.Secret{
		Name: "identity:" + service,
		Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: id.chainPEM}},
			PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: id.keyPEM}},
		}},
	}
}

func caSecret(pemBundle []byte) *tlsv3.Secret {
	return &tlsv3.Secret{
		Name: "mesh_ca:" + mesh,
		Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: pemBundle}},
		}},
	}
}

func commonTLS(identityService string, san *matcherv3.StringMatcher, alpn []string) *tlsv3.CommonTlsContext {
	return &tlsv3.CommonTlsContext{
		TlsParams:                      &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sds("identity:" + identityService)},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext: &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
				SanType: tlsv3.SubjectAltNameMatcher_URI,
				Matcher: san,
			}}},
			ValidationContextSdsSecretConfig: sds("mesh_ca:" + mesh),
		}},
		AlpnProtocols: alpn,
	}
}

func prefix(p string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: p}}
}

func exact(s string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}
}

// downstreamTLS is the transport socket of the inbound listener of
// service.
func downstreamTLS(t testing.TB, service string, http bool) *corev3.TransportSocket {
	var alpn []string
	if http {
		alpn = []string{"h2", "http/1.1"}
	}
	return &corev3.TransportSocket{
		Name: "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, &tlsv3.DownstreamTlsContext{
			RequireClientCertificate: wrapperspb.Bool(true),
			CommonTlsContext:         commonTLS(service, prefix("spiffe://"+mesh+"/"), alpn),
		})},
	}
}

// upstreamTLS is the transport socket of the outbound cluster to dest of a
// proxy whose first service is self.
func upstreamTLS(t testing.TB, self, dest string, http2 bool) *corev3.TransportSocket {
	var alpn []string
	if http2 {
		alpn = []string{"h2"}
	}
	return &corev3.TransportSocket{
		Name: "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, &tlsv3.UpstreamTlsContext{
			CommonTlsContext: commonTLS(self, exact(spiffe(dest)), alpn),
		})},
	}
}

// mtlsCluster is the outbound EDS cluster to dest with mTLS.
func mtlsCluster(t testing.TB, self, dest string, http2 bool) *clusterv3.Cluster {
	c := edsCluster(t, dest, http2)
	c.TransportSocket = upstreamTLS(t, self, dest, http2)
	return c
}

// rbacRules is config.rbac.v3.RBAC ALLOW with one policy per name.
func rbacRules(policies map[string][]*rbacv3.Principal) *rbacv3.RBAC {
	out := &rbacv3.RBAC{Action: rbacv3.RBAC_ALLOW, Policies: map[string]*rbacv3.Policy{}}
	for name, principals := range policies {
		out.Policies[name] = &rbacv3.Policy{
			Permissions: []*rbacv3.Permission{{Rule: &rbacv3.Permission_Any{Any: true}}},
			Principals:  principals,
		}
	}
	return out
}

func principalName(m *matcherv3.StringMatcher) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{PrincipalName: m}}}
}

func anyPrincipal() *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Any{Any: true}}
}

// mode is the mTLS mode of an inbound listener.
type mode int

const (
	plaintext mode = iota
	strict
	permissive
)

// inbound describes the inbound listener of a server sidecar.
type inbound struct {
	service string
	addr    string // listener address
	app     string // the application's address
	http    bool
	mode    mode
	rules   *rbacv3.RBAC // nil: no RBAC filter
	shadow  *rbacv3.RBAC
}

// listener builds the inbound Listener of the contract: the TLS chain (in
// PERMISSIVE, matched on transport_protocol "tls" after the TLS
// inspector, followed by a plaintext chain), RBAC before the terminal
// filter.
func (in inbound) listener(t testing.TB) *listenerv3.Listener {
	name := "inbound:" + in.addr
	statPrefix := "inbound_" + in.service
	var terminal *listenerv3.Filter
	var netRBAC []*listenerv3.Filter
	if in.http {
		h := hcm(t, statPrefix)
		h.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name: "inbound:" + in.service,
			VirtualHosts: []*routev3.VirtualHost{{Name: in.service, Domains: []string{"*"}, Routes: []*routev3.Route{{
				Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "localhost:" + in.service}}},
			}}}},
		}}
		if in.rules != nil || in.shadow != nil {
			h.HttpFilters = append([]*hcmv3.HttpFilter{{
				Name:       "envoy.filters.http.rbac",
				ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &httprbacv3.RBAC{Rules: in.rules, ShadowRules: in.shadow})},
			}}, h.HttpFilters...)
		}
		terminal = &listenerv3.Filter{Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, h)}}
	} else {
		terminal = &listenerv3.Filter{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, &tcpproxyv3.TcpProxy{
			StatPrefix: statPrefix, ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: "localhost:" + in.service},
		})}}
		if in.rules != nil || in.shadow != nil {
			netRBAC = []*listenerv3.Filter{{Name: "envoy.filters.network.rbac", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, &networkrbacv3.RBAC{
				StatPrefix: statPrefix + ".", Rules: in.rules, ShadowRules: in.shadow,
			})}}}
		}
	}
	filters := append(netRBAC, terminal)
	l := &listenerv3.Listener{Name: name, Address: socketAddress(in.addr), TrafficDirection: corev3.TrafficDirection_INBOUND}
	switch in.mode {
	case plaintext:
		l.FilterChains = []*listenerv3.FilterChain{{Filters: filters}}
	case strict:
		l.FilterChains = []*listenerv3.FilterChain{{Filters: filters, TransportSocket: downstreamTLS(t, in.service, in.http)}}
	case permissive:
		l.ListenerFilters = []*listenerv3.ListenerFilter{{
			Name:       "envoy.filters.listener.tls_inspector",
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(t, &tlsinspectorv3.TlsInspector{})},
		}}
		l.FilterChains = []*listenerv3.FilterChain{
			{FilterChainMatch: &listenerv3.FilterChainMatch{TransportProtocol: "tls"}, Filters: filters, TransportSocket: downstreamTLS(t, in.service, in.http)},
			{Filters: filters},
		}
	}
	return l
}

// config is the server sidecar's configuration.
func (in inbound) config(t testing.TB, ca []byte, id *identity) *xdsconfig.Config {
	cfg := configOf(in.listener(t), staticCluster("localhost:"+in.service, in.app))
	if id != nil {
		s := identitySecret(in.service, id)
		cfg.Secrets[s.GetName()] = s
	}
	if ca != nil {
		s := caSecret(ca)
		cfg.Secrets[s.GetName()] = s
	}
	return cfg
}

// outbound describes the outbound listener of a client sidecar (service
// self) to service dest at the server sidecar's inbound address.
type outbound struct {
	self, dest string
	addr       string // listener address
	upstream   string // the server sidecar's inbound address
	http       bool
	http2      bool
}

func (o outbound) config(t testing.TB, ca []byte, id *identity) *xdsconfig.Config {
	var cfg *xdsconfig.Config
	if o.http {
		cfg = configOf(httpListener(t, o.addr, o.dest), routeConfig(o.dest, nil), mtlsCluster(t, o.self, o.dest, o.http2), cla(o.dest, o.upstream))
	} else {
		cfg = configOf(tcpListener(t, o.addr, o.dest), mtlsCluster(t, o.self, o.dest, false), cla(o.dest, o.upstream))
	}
	if id != nil {
		s := identitySecret(o.self, id)
		cfg.Secrets[s.GetName()] = s
	}
	if ca != nil {
		s := caSecret(ca)
		cfg.Secrets[s.GetName()] = s
	}
	return cfg
}

// withSecrets returns a copy of cfg with secrets added or replaced: an
// SDS-only update.
func withSecrets(cfg *xdsconfig.Config, secrets ...*tlsv3.Secret) *xdsconfig.Config {
	out := cfg.Clone()
	for _, s := range secrets {
		out.Secrets[s.GetName()] = s
	}
	return out
}

// sidecar starts a runtime with cfg.
func sidecar(t testing.TB, cfg *xdsconfig.Config) *runtime.Runtime {
	t.Helper()
	rt := newRuntime(t)
	apply(t, rt, cfg)
	return rt
}

// probeTLS connects to a TLS listener with a client certificate and
// returns the serial of the certificate the server presented, or the
// handshake error.
func probeTLS(t testing.TB, addr string, client *identity) (*big.Int, error) {
	t.Helper()
	d := &tls.Dialer{Config: &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // the test reads the certificate
		Certificates:       []tls.Certificate{client.tls},
		NextProtos:         []string{"http/1.1"},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	tc := c.(*tls.Conn)
	// In TLS 1.3 the server verifies the client after the client's
	// handshake is done: a refused client sees it on its first read.
	_ = tc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := tc.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
		return nil, err
	}
	return tc.ConnectionState().PeerCertificates[0].SerialNumber, nil
}
