package build

import (
	"errors"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// The mTLS parts of a sidecar (docs/xds-contract.md, "mTLS, identity and
// authorization"): SDS secrets and TLS transport sockets.

// ALPN lists advertised on TLS connections.
var (
	alpnInboundHTTP = []string{"h2", "http/1.1"}
	alpnHTTP2       = []string{"h2"}
)

// errNoIdentity says an mTLS proxy has no workload certificate to present.
var errNoIdentity = errors.New("mTLS is on but the proxy has no identity")

func identitySecretName(service string) string { return "identity:" + service }
func meshCASecretName(mesh string) string      { return "mesh_ca:" + mesh }

// secrets returns the SDS secrets of an mTLS proxy: one identity per
// service, and the mesh's trust bundle.
func secrets(m *proxymodel.MTLS) []*tlsv3.Secret {
	out := make([]*tlsv3.Secret, 0, len(m.Identities)+1)
	for _, id := range m.Identities {
		out = append(out, &tlsv3.Secret{
			Name: identitySecretName(id.Service),
			Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
				CertificateChain: inlineBytes(id.CertPEM),
				PrivateKey:       inlineBytes(id.KeyPEM),
			}},
		})
	}
	out = append(out, &tlsv3.Secret{
		Name: meshCASecretName(m.TrustDomain),
		Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: inlineBytes(m.TrustedCAs),
		}},
	})
	return out
}

func inlineBytes(b []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
}

func sdsRef(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: adsSource()}
}

// commonTLS presents the identity of service and validates the peer
// against the mesh's CAs and a SAN matcher.
func commonTLS(m *proxymodel.MTLS, service string, san *matcherv3.StringMatcher, alpn []string) *tlsv3.CommonTlsContext {
	return &tlsv3.CommonTlsContext{
		TlsParams:                      &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsRef(identitySecretName(service))},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext: &tlsv3.CertificateValidationContext{
					MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
						SanType: tlsv3.SubjectAltNameMatcher_URI,
						Matcher: san,
					}},
				},
				ValidationContextSdsSecretConfig: sdsRef(meshCASecretName(m.TrustDomain)),
			},
		},
		AlpnProtocols: alpn,
	}
}

// identityFor returns the service whose certificate an inbound presents:
// its own, or the proxy's first when it has none of its own.
func identityFor(m *proxymodel.MTLS, service string) (string, error) {
	for _, id := range m.Identities {
		if id.Service == service {
			return service, nil
		}
	}
	if len(m.Identities) == 0 {
		return "", errNoIdentity
	}
	return m.Identities[0].Service, nil
}

// downstreamTLS is the transport socket of an mTLS inbound: it requires a
// client certificate of the mesh (any service).
func downstreamTLS(p *proxymodel.Proxy, in *proxymodel.Inbound) (*corev3.TransportSocket, error) {
	m := p.MTLS
	svc, err := identityFor(m, in.Service)
	if err != nil {
		return nil, err
	}
	var alpn []string
	if isHTTP(in.Protocol) {
		alpn = alpnInboundHTTP
	}
	prefix := &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: proxymodel.SpiffeID(m.TrustDomain, "")}}
	tc := &tlsv3.DownstreamTlsContext{
		RequireClientCertificate: wrapperspb.Bool(true),
		CommonTlsContext:         commonTLS(m, svc, prefix, alpn),
	}
	err = runHooks(func(pl *Plugin) error {
		if pl.DownstreamTLS == nil {
			return nil
		}
		return pl.DownstreamTLS(p, in, tc)
	})
	if err != nil {
		return nil, err
	}
	return transportSocket(tc)
}

// upstreamTLS is the transport socket of an outbound cluster to service
// dest: the proxy presents its first identity and accepts only dest's.
func upstreamTLS(p *proxymodel.Proxy, out *proxymodel.Outbound, dest, protocol string) (*corev3.TransportSocket, error) {
	m := p.MTLS
	if len(m.Identities) == 0 {
		return nil, errNoIdentity
	}
	var alpn []string
	if isHTTP2(protocol) {
		alpn = alpnHTTP2
	}
	exact := &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: proxymodel.SpiffeID(m.TrustDomain, dest)}}
	tc := &tlsv3.UpstreamTlsContext{
		CommonTlsContext: commonTLS(m, m.Identities[0].Service, exact, alpn),
	}
	err := runHooks(func(pl *Plugin) error {
		if pl.UpstreamTLS == nil {
			return nil
		}
		return pl.UpstreamTLS(p, out, tc)
	})
	if err != nil {
		return nil, err
	}
	return transportSocket(tc)
}

func transportSocket(ctx proto.Message) (*corev3.TransportSocket, error) {
	cfg, err := anyOf(ctx)
	if err != nil {
		return nil, err
	}
	return &corev3.TransportSocket{
		Name:       wellknown.TransportSocketTLS,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: cfg},
	}, nil
}
