package proxymodel

import (
	"sort"

	"github.com/trellis-mesh/trellis/api/mesh"
)

// Zone egress. When a mesh sets routing.zoneEgress and the proxy's zone
// has a ZoneEgress, the proxy's cross-zone endpoints point at that egress
// instead of the other zones' ingresses (same localities and weights, and
// the same SNI); the egress picks the service by SNI and forwards the
// still-encrypted connection to the ingresses of the zones that run it.
// External services through the egress come later.

// ZoneEgressInfo is a ZoneEgress as the proxies of a mesh see it.
type ZoneEgressInfo struct {
	Name string
	// Zone is the zone it serves (as ZoneIngressInfo.Zone).
	Zone    string
	Address string
	Port    uint32
}

// egressFor returns the zone egress the proxies of zone use, if the mesh
// routes through one: the first by name of that zone.
func (ix *Index) egressFor(zone string) (ZoneEgressInfo, bool) {
	if !ix.snap.MeshSpec.ZoneEgressEnabled() {
		return ZoneEgressInfo{}, false
	}
	var found []ZoneEgressInfo
	for _, ze := range ix.snap.ZoneEgresses {
		if ze.Zone == zone && ze.Address != "" && ze.Port != 0 {
			found = append(found, ze)
		}
	}
	if len(found) == 0 {
		return ZoneEgressInfo{}, false
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Name < found[j].Name })
	return found[0], true
}

// viaEgress rewrites cross-zone endpoints to the proxy zone's egress.
func (ix *Index) viaEgress(zone string, eps []Endpoint) []Endpoint {
	ze, ok := ix.egressFor(zone)
	if !ok {
		return eps
	}
	out := make([]Endpoint, len(eps))
	for i, ep := range eps {
		if ep.ZoneIngress != "" {
			ep.Address, ep.Port = ze.Address, ze.Port
		}
		out[i] = ep
	}
	return out
}

// BuildZoneEgress returns the model of a zone egress of zone: per service
// of a mesh that routes through egresses, a chain by SNI to the ingresses
// of the other zones that run it. The model has the shape of an
// ingress's (build.ZoneIngress builds both).
func BuildZoneEgress(name, zone string, spec *mesh.ZoneEgress, meshes []*Index) *ZoneIngressProxy {
	p := &ZoneIngressProxy{Name: name, Zone: zone}
	if spec != nil && spec.Networking != nil {
		p.Address, p.Port = spec.Networking.Address, spec.Networking.Port
	}
	if p.Address == "" {
		p.Address = "0.0.0.0"
	}
	for _, ix := range meshes {
		if !ix.snap.MeshSpec.ZoneEgressEnabled() {
			continue
		}
		ix.crossZoneInit()
		for svc, eps := range ix.cross.remote {
			var remote []Endpoint
			for _, ep := range eps {
				if ep.Zone != zone {
					remote = append(remote, ep)
				}
			}
			if len(remote) > 0 {
				p.Services = append(p.Services, IngressService{Mesh: ix.snap.Mesh, Service: svc, SNI: SNI(ix.snap.Mesh, svc), Endpoints: remote})
			}
		}
	}
	sort.Slice(p.Services, func(i, j int) bool {
		a, b := p.Services[i], p.Services[j]
		if a.Mesh != b.Mesh {
			return a.Mesh < b.Mesh
		}
		return a.Service < b.Service
	})
	return p
}

// SetZoneProxies gives a freshly made index the zone proxies (before any
// Build or EndpointsFor).
func (ix *Index) SetZoneProxies(ingresses []ZoneIngressInfo, egresses []ZoneEgressInfo) {
	ix.snap.ZoneIngresses, ix.snap.ZoneEgresses = ingresses, egresses
}
