package xdsclient_test

import (
	"maps"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// The mTLS shapes of docs/xds-contract.md: SDS references over ADS in the
// common TLS context of listener filter chains and clusters.

func sdsRef(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}}
}

func commonTLS(identity string) *tlsv3.CommonTlsContext {
	return &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsRef(identity)},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         &tlsv3.CertificateValidationContext{},
			ValidationContextSdsSecretConfig: sdsRef("mesh_ca:default"),
		}},
	}
}

func tlsSocket(t *testing.T, ctx proto.Message) *corev3.TransportSocket {
	t.Helper()
	a, err := anypb.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a}}
}

func identitySecret(name, content string) *tlsv3.Secret {
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: content}},
	}}}
}

// mtlsConfig is an inbound listener of backend in PERMISSIVE mode (a TLS
// chain and a plaintext chain) and an outbound cluster to db with upstream
// TLS, with the secrets they reference.
func mtlsConfig(t *testing.T, identityContent string) []types.Resource {
	in := httpListener("inbound:10.0.0.1:8080", 8080, "outbound:a")
	tlsChain := &listenerv3.FilterChain{
		FilterChainMatch: &listenerv3.FilterChainMatch{TransportProtocol: "tls"},
		Filters:          in.FilterChains[0].Filters,
		TransportSocket:  tlsSocket(t, &tlsv3.DownstreamTlsContext{CommonTlsContext: commonTLS("identity:backend")}),
	}
	in.FilterChains = append([]*listenerv3.FilterChain{tlsChain}, in.FilterChains...)
	db := edsCluster("db")
	db.TransportSocket = tlsSocket(t, &tlsv3.UpstreamTlsContext{CommonTlsContext: commonTLS("identity:web")})
	return []types.Resource{
		in, routeConfig("outbound:a", "db"), db, cla("db", 5432),
		identitySecret("identity:backend", identityContent),
		identitySecret("identity:web", identityContent),
		&tlsv3.Secret{Name: "mesh_ca:default", Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{}}},
	}
}

func TestSecretsReferencedByTLSContextsAreSubscribed(t *testing.T) {
	want := map[string]bool{"identity:backend": true, "identity:web": true, "mesh_ca:default": true}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			cp := newControlPlane(t)
			cp.setSnapshotUnchecked("1", mtlsConfig(t, "v1")...)
			app := &applier{}
			c := startClient(t, cp, mode, app)
			eventually(t, "the initial config with its secrets", func() bool {
				cfg := app.last()
				return c.Ready() && cfg != nil && len(cfg.Secrets) == 3
			})
			eventually(t, "the secret subscription", func() bool {
				return maps.Equal(cp.rec.subscribed(xdsconfig.SecretType), want)
			})

			// A new secret under the same name replaces the old one.
			cp.setSnapshotUnchecked("2", mtlsConfig(t, "v2")...)
			eventually(t, "the rotated secret", func() bool {
				s := app.last().Secrets["identity:backend"]
				return s.GetTlsCertificate().GetCertificateChain().GetInlineString() == "v2"
			})
		})
	}
}
