package runtime_test

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	meshapi "github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// What the control plane builds for a transparent proxy (redirect
// listeners with original_dst, chains by VIP:port and by inbound port,
// PERMISSIVE's TLS inspector, passthrough ORIGINAL_DST clusters with a
// bound source) is accepted and bound by trellis-dp, in every mTLS mode.
func TestTransparentProxyConfigFromTheBuilder(t *testing.T) {
	ca := newCA(t, "ca")
	dualStack := true
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		dualStack = false
	} else {
		ln.Close()
	}
	inbound := func(port uint32, svc, proto string) meshapi.Inbound {
		return meshapi.Inbound{Port: port, Tags: map[string]string{meshapi.ServiceTag: svc, meshapi.ProtocolTag: proto}}
	}
	snap := &proxymodel.MeshSnapshot{Mesh: mesh, MeshSpec: &meshapi.Mesh{}, Dataplanes: []proxymodel.NamedDataplane{
		{Name: "web-1", Spec: &meshapi.Dataplane{Networking: &meshapi.DataplaneNetworking{
			Address: "10.0.0.1", Inbound: []meshapi.Inbound{inbound(8080, "web", "http"), inbound(8081, "web-admin", "tcp")},
			TransparentProxying: &meshapi.TransparentProxying{DirectAccessServices: []string{"*"}},
		}}},
		{Name: "backend-1", Spec: &meshapi.Dataplane{Networking: &meshapi.DataplaneNetworking{
			Address: "10.0.0.2", Inbound: []meshapi.Inbound{inbound(9000, "backend", "http2"), inbound(6379, "redis", "tcp")},
		}}},
	}}
	for _, mode := range []string{"", proxymodel.MTLSStrict, proxymodel.MTLSPermissive} {
		t.Run("mtls="+mode, func(t *testing.T) {
			ix := proxymodel.NewIndex(snap)
			p, err := ix.Build("web-1")
			if err != nil {
				t.Fatal(err)
			}
			tp := p.TransparentProxy
			tp.RedirectPortInbound = freePort(t)
			tp.RedirectPortOutbound = freePort(t)
			if !dualStack {
				tp.IPFamilyMode = meshapi.IPFamilyIPv4
			}
			p.VIPs = []proxymodel.VIP{
				{Service: "backend", Name: "backend.mesh", IPv4: "240.0.0.1", IPv6: "fd00:fd00::1"},
				{Service: "redis", Name: "redis.mesh", IPv4: "240.0.0.2", IPv6: "fd00:fd00::2"},
			}
			ix.AddTransparentOutbounds(p)
			if mode != "" {
				p.MTLS = &proxymodel.MTLS{Mode: mode, TrustDomain: mesh, TrustedCAs: ca.pem()}
				for _, svc := range p.Services {
					id := ca.issue(t, spiffe(svc))
					p.MTLS.Identities = append(p.MTLS.Identities, proxymodel.Identity{
						Service: svc, SpiffeID: spiffe(svc), CertPEM: id.chainPEM, KeyPEM: id.keyPEM,
					})
				}
			}
			res, err := build.Sidecar(p)
			if err != nil {
				t.Fatal(err)
			}
			var all []proto.Message
			for _, l := range res.Listeners {
				all = append(all, l)
			}
			for _, r := range res.Routes {
				all = append(all, r)
			}
			for _, c := range res.Clusters {
				all = append(all, c)
			}
			for _, e := range res.Endpoints {
				all = append(all, e)
			}
			for _, s := range res.Secrets {
				all = append(all, s)
			}
			rt := newRuntime(t)
			apply(t, rt, configOf(all...))
			want := []netip.AddrPort{
				netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(tp.RedirectPortInbound)),
				netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(tp.RedirectPortOutbound)),
			}
			if dualStack {
				want = append(want,
					netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(tp.RedirectPortInbound)),
					netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(tp.RedirectPortOutbound)))
			}
			slices.SortFunc(want, netip.AddrPort.Compare)
			if got := rt.ListenerAddrs(); !slices.Equal(got, want) {
				t.Fatalf("listening on %v, want %v", got, want)
			}
		})
	}
}

// freePort returns a TCP port that was free on every address a moment ago.
func freePort(t *testing.T) uint32 {
	t.Helper()
	_, port, _ := strings.Cut(freeAddr(t), ":")
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(n)
}
