package server_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/trellis-mesh/trellis/api/system"
	"github.com/trellis-mesh/trellis/internal/ca"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

func mtlsMesh(expiration string) string {
	return `type: Mesh
name: default
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
    mode: STRICT
    dpCert:
      rotation:
        expiration: ` + expiration + "\n"
}

// adsClient is a raw SotW ADS client that ACKs what it receives.
type adsClient struct {
	t      *testing.T
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	req    *discoveryv3.DiscoveryRequest
}

// subscribe asks for a type and returns the first response of that type.
func (a *adsClient) subscribe(typ string, names ...string) *discoveryv3.DiscoveryResponse {
	a.t.Helper()
	if err := a.stream.Send(&discoveryv3.DiscoveryRequest{Node: a.req.Node, TypeUrl: typ, ResourceNames: names}); err != nil {
		a.t.Fatal(err)
	}
	return a.next(typ, names)
}

// next returns the next response of typ, ACKing every response it reads.
func (a *adsClient) next(typ string, names []string) *discoveryv3.DiscoveryResponse {
	a.t.Helper()
	for {
		resp, err := a.stream.Recv()
		if err != nil {
			a.t.Fatal(err)
		}
		var ackNames []string
		if resp.TypeUrl == typ {
			ackNames = names
		}
		if err := a.stream.Send(&discoveryv3.DiscoveryRequest{Node: a.req.Node, TypeUrl: resp.TypeUrl, ResourceNames: ackNames,
			VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce}); err != nil {
			a.t.Fatal(err)
		}
		if resp.TypeUrl == typ {
			return resp
		}
	}
}

func secretsOf(t *testing.T, resp *discoveryv3.DiscoveryResponse) map[string]*tlsv3.Secret {
	t.Helper()
	out := map[string]*tlsv3.Secret{}
	for _, a := range resp.Resources {
		var s tlsv3.Secret
		if err := a.UnmarshalTo(&s); err != nil {
			t.Fatal(err)
		}
		out[s.Name] = &s
	}
	return out
}

func leafOf(t *testing.T, s *tlsv3.Secret) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(s.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
	if block == nil {
		t.Fatalf("secret %s has no certificate", s.Name)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func connect(t *testing.T, c *cp, name string, port int) *adsClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(c.dial(t)).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &adsClient{t: t, stream: stream, req: &discoveryv3.DiscoveryRequest{Node: dpNode(t, name, port)}}
}

// A proxy of an mTLS mesh gets TLS listeners and clusters, its workload
// certificate issued by the mesh's builtin CA, and that CA to trust.
func TestMTLSProxyGetsIdentityAndTLSConfig(t *testing.T) {
	c := startCP(t, time.Minute)
	c.apply(t, mtlsMesh("1h"))
	ads := connect(t, c, "backend-1", 18090)

	lds := ads.subscribe(resourcev3.ListenerType)
	var inbound *listenerv3.Listener
	for _, a := range lds.Resources {
		var l listenerv3.Listener
		if err := a.UnmarshalTo(&l); err != nil {
			t.Fatal(err)
		}
		if l.Name == "inbound:127.0.0.1:18090" {
			inbound = &l
		}
	}
	if inbound == nil || len(inbound.FilterChains) != 1 {
		t.Fatalf("inbound listener %v: want one TLS chain (STRICT)", inbound)
	}
	var down tlsv3.DownstreamTlsContext
	if err := inbound.FilterChains[0].GetTransportSocket().GetTypedConfig().UnmarshalTo(&down); err != nil {
		t.Fatalf("inbound transport socket: %v", err)
	}
	if !down.GetRequireClientCertificate().GetValue() || down.CommonTlsContext.TlsCertificateSdsSecretConfigs[0].Name != "identity:backend" {
		t.Fatalf("downstream TLS %v", &down)
	}

	cds := ads.subscribe(resourcev3.ClusterType)
	found := false
	for _, a := range cds.Resources {
		var cl clusterv3.Cluster
		if err := a.UnmarshalTo(&cl); err != nil {
			t.Fatal(err)
		}
		if cl.Name != "backend" {
			continue
		}
		found = true
		var up tlsv3.UpstreamTlsContext
		if err := cl.GetTransportSocket().GetTypedConfig().UnmarshalTo(&up); err != nil {
			t.Fatalf("outbound cluster transport socket: %v", err)
		}
		san := up.CommonTlsContext.GetCombinedValidationContext().GetDefaultValidationContext().GetMatchTypedSubjectAltNames()
		if len(san) != 1 || san[0].GetMatcher().GetExact() != "spiffe://default/backend" {
			t.Fatalf("upstream SAN matchers %v", san)
		}
	}
	if !found {
		t.Fatal("no backend cluster")
	}

	sds := secretsOf(t, ads.subscribe(resourcev3.SecretType, "identity:backend", "mesh_ca:default"))
	id, bundle := sds["identity:backend"], sds["mesh_ca:default"]
	if id == nil || bundle == nil {
		t.Fatalf("secrets %v", sds)
	}
	leaf := leafOf(t, id)
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://default/backend" {
		t.Fatalf("URI SANs %v", leaf.URIs)
	}
	trusted := bundle.GetValidationContext().GetTrustedCa().GetInlineBytes()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(trusted)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("the workload certificate does not chain to the served CA: %v", err)
	}
	d, _ := c.mgr.Registry().ByKind(kinds.Secret)
	stored, err := c.mgr.Get(context.Background(), d, "default", ca.BuiltinCertSecret("default", "ca-1"))
	if err != nil {
		t.Fatalf("the builtin CA was not stored: %v", err)
	}
	if b, _ := stored.Spec.(*system.Secret).Bytes(); string(b) != string(trusted) {
		t.Fatal("the trust bundle is not the stored builtin CA")
	}
}

// With a 2-second certificate lifetime, a new certificate reaches the
// proxy before the old one expires, without the proxy asking.
func TestMTLSCertificateIsRenewedWithoutRequest(t *testing.T) {
	c := startCP(t, time.Minute)
	c.apply(t, mtlsMesh("2s"))
	ads := connect(t, c, "backend-1", 18091)
	names := []string{"identity:backend", "mesh_ca:default"}
	first := leafOf(t, secretsOf(t, ads.subscribe(resourcev3.SecretType, names...))["identity:backend"])

	got := make(chan *x509.Certificate, 1)
	go func() { got <- leafOf(t, secretsOf(t, ads.next(resourcev3.SecretType, names))["identity:backend"]) }()
	select {
	case second := <-got:
		if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
			t.Fatal("the same certificate was pushed again")
		}
		if !second.NotAfter.After(first.NotAfter) {
			t.Fatalf("the new certificate expires at %v, not after the old one (%v)", second.NotAfter, first.NotAfter)
		}
		if time.Now().After(first.NotAfter) {
			t.Fatalf("the new certificate arrived after the old one expired")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no new certificate was pushed within 5 s")
	}
}

// Replacing the mesh's CA backend is a mesh change: connected proxies get
// certificates of the new CA and a bundle that trusts it.
func TestMTLSBackendSwitchIsPushed(t *testing.T) {
	c := startCP(t, time.Minute)
	c.apply(t, mtlsMesh("1h"))
	ads := connect(t, c, "backend-1", 18092)
	names := []string{"identity:backend", "mesh_ca:default"}
	before := secretsOf(t, ads.subscribe(resourcev3.SecretType, names...))
	c.apply(t, "type: Mesh\nname: default\nmtls:\n  enabledBackend: ca-2\n  backends:\n  - name: ca-2\n    type: builtin\n")
	after := secretsOf(t, ads.next(resourcev3.SecretType, names))
	oldCA := before["mesh_ca:default"].GetValidationContext().GetTrustedCa().GetInlineBytes()
	newCA := after["mesh_ca:default"].GetValidationContext().GetTrustedCa().GetInlineBytes()
	if string(oldCA) == string(newCA) {
		t.Fatal("the trust bundle did not change with the backend")
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(newCA)
	if _, err := leafOf(t, after["identity:backend"]).Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("the new certificate is not from the new CA: %v", err)
	}
}

// A builtin CA is created when its Mesh is applied, before any proxy of
// the mesh connects.
func TestBuiltinCACreatedOnMeshChange(t *testing.T) {
	c := startCP(t, time.Minute)
	c.apply(t, "type: Mesh\nname: other\nmtls:\n  backends:\n  - name: ca-1\n    type: builtin\n")
	d, _ := c.mgr.Registry().ByKind(kinds.Secret)
	waitFor(t, "the builtin CA secrets", func() bool {
		_, certErr := c.mgr.Get(context.Background(), d, "other", ca.BuiltinCertSecret("other", "ca-1"))
		_, keyErr := c.mgr.Get(context.Background(), d, "other", ca.BuiltinKeySecret("other", "ca-1"))
		return certErr == nil && keyErr == nil
	})
}
