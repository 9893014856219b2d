package build_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// zoneSnapshot is testdata/zoneproxy/mesh.yaml in a mesh with mTLS and,
// when withIngress, zone-2's ingress with the services it computes.
func zoneSnapshot(t *testing.T, withIngress bool) *proxymodel.MeshSnapshot {
	t.Helper()
	snap := loadSnapshot(t, "testdata/zoneproxy/mesh.yaml")
	snap.MeshSpec = &mesh.Mesh{MTLS: &mesh.MTLS{EnabledBackend: "ca-1", Backends: []mesh.CertificateAuthorityBackend{{Name: "ca-1", Type: "builtin"}}}}
	if withIngress {
		avail := proxymodel.AvailableServices("zone-2", []*proxymodel.Index{proxymodel.NewIndex(snap)})
		snap.ZoneIngresses = []proxymodel.ZoneIngressInfo{{
			Name: "zi-2", Zone: "zone-2", AdvertisedAddress: "192.0.2.20", AdvertisedPort: 10001, AvailableServices: avail,
		}}
	}
	return snap
}

// The ingress of zone-2: one listener with the TLS inspector and a chain
// per service of zone-2, matched by SNI, forwarding to EDS clusters of
// zone-2's instances, with no TLS of its own.
func TestZoneIngressGolden(t *testing.T) {
	ix := proxymodel.NewIndex(zoneSnapshot(t, false))
	spec := &mesh.ZoneIngress{Networking: &mesh.ZoneIngressNetworking{Address: "10.0.2.100", Port: 10001, AdvertisedAddress: "192.0.2.20", AdvertisedPort: 10001}}
	r, err := build.ZoneIngress(proxymodel.BuildZoneIngress("zi-2", "zone-2", spec, []*proxymodel.Index{ix}))
	if err != nil {
		t.Fatal(err)
	}
	validateAll(t, r)
	golden(t, "zoneproxy/ingress-zone-2", dump(t, r))
}

// web-1 in zone-1: backend has its local instance at priority 0 and
// zone-2's ingress (weight 2) at priority 1; api only the ingress; redis
// (zone-3, no ingress) stays direct; cross-zone clusters send the SNI.
func TestCrossZoneSidecarGolden(t *testing.T) {
	ix := proxymodel.NewIndex(zoneSnapshot(t, true))
	p, err := ix.Build("web-1")
	if err != nil {
		t.Fatal(err)
	}
	p.MTLS = testMTLS(t, proxymodel.MTLSStrict, p.Services)
	r, err := build.Sidecar(p)
	if err != nil {
		t.Fatal(err)
	}
	validateAll(t, r)
	golden(t, "zoneproxy/sidecar-web-1", dump(t, r))
}

// Without mTLS there is no cross-zone traffic: the ingress serves nothing
// and sidecars reach every instance directly.
func TestCrossZoneNeedsMTLS(t *testing.T) {
	snap := zoneSnapshot(t, true)
	snap.MeshSpec = &mesh.Mesh{}
	ix := proxymodel.NewIndex(snap)
	if got := ix.EndpointsFor("zone-1", "api"); len(got) != 1 || got[0].ZoneIngress != "" {
		t.Fatalf("api endpoints without mTLS = %+v, want the direct instance", got)
	}
	if got := proxymodel.AvailableServices("zone-2", []*proxymodel.Index{ix}); len(got) != 0 {
		t.Fatalf("available services without mTLS = %+v, want none", got)
	}
}

// A proxy of zone-2 reaches zone-2's instances directly, not through its
// own ingress.
func TestCrossZoneOwnZoneIsDirect(t *testing.T) {
	ix := proxymodel.NewIndex(zoneSnapshot(t, true))
	for _, ep := range ix.EndpointsFor("zone-2", "backend") {
		if ep.ZoneIngress != "" {
			t.Fatalf("zone-2 sees its own ingress: %+v", ep)
		}
	}
	eps := ix.EndpointsFor("zone-1", "backend")
	var via []proxymodel.Endpoint
	for _, ep := range eps {
		if ep.ZoneIngress != "" {
			via = append(via, ep)
		}
	}
	if len(eps) != 2 || len(via) != 1 || via[0].Weight != 2 || via[0].Address != "192.0.2.20" {
		t.Fatalf("zone-1's backend endpoints = %+v, want backend-1 and the ingress with weight 2", eps)
	}
}

func validateAll(t *testing.T, r *build.Resources) {
	t.Helper()
	for _, res := range r.ByType() {
		for _, x := range res {
			if err := x.(interface{ ValidateAll() error }).ValidateAll(); err != nil {
				t.Fatalf("%T does not pass Envoy's validation: %v", x, err)
			}
		}
	}
}

// With routing.zoneEgress, web-1 (zone-1) reaches zone-2 through zone-1's
// egress (same localities, weights and SNI), and the egress forwards by
// SNI to zone-2's ingress.
func TestZoneEgressGolden(t *testing.T) {
	snap := zoneSnapshot(t, true)
	on := true
	snap.MeshSpec.Routing = &mesh.Routing{ZoneEgress: &on}
	snap.ZoneEgresses = []proxymodel.ZoneEgressInfo{{Name: "ze-1", Zone: "zone-1", Address: "10.0.1.200", Port: 10002}}
	ix := proxymodel.NewIndex(snap)
	p, err := ix.Build("web-1")
	if err != nil {
		t.Fatal(err)
	}
	p.MTLS = testMTLS(t, proxymodel.MTLSStrict, p.Services)
	r, err := build.Sidecar(p)
	if err != nil {
		t.Fatal(err)
	}
	validateAll(t, r)
	golden(t, "zoneproxy/sidecar-web-1-egress", dump(t, r))

	spec := &mesh.ZoneEgress{Networking: &mesh.ZoneEgressNetworking{Address: "10.0.1.200", Port: 10002}}
	r, err = build.ZoneIngress(proxymodel.BuildZoneEgress("ze-1", "zone-1", spec, []*proxymodel.Index{ix}))
	if err != nil {
		t.Fatal(err)
	}
	validateAll(t, r)
	golden(t, "zoneproxy/egress-zone-1", dump(t, r))
}
