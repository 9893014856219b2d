package proxymodel

import (
	"sort"
	"sync"

	"github.com/trellis-mesh/trellis/api/mesh"
)

// Cross-zone endpoints. A service whose instances run in another zone is
// reached through that zone's ZoneIngress: its sidecars' load assignment
// gets one endpoint at the ingress's advertised address, weighted by the
// number of instances the ingress announces (availableServices), with the
// ingress's zone as locality. The client's TLS session goes through the
// ingress (which routes by SNI) to the backend's sidecar.
//
// Which zone a proxy is in: the kuma.io/zone tag of its first inbound,
// else the control plane's own zone (MeshSnapshot.LocalZone; empty for a
// standalone control plane). An ingress serves zone Z (ZoneIngressInfo.Zone)
// and is "remote" for every proxy outside Z. Dataplane endpoints of a zone
// that has a known remote ingress are reached through the ingress rather
// than directly (that is how a standalone control plane simulates zones
// with kuma.io/zone tags); dataplane endpoints of zones without an ingress
// (and of the proxy's own zone) stay direct. Cross-zone traffic needs mTLS
// (the ingress routes by the SNI of the mesh's TLS): meshes without mTLS
// get no cross-zone endpoints, as in Kuma.

// ZoneIngressInfo is a ZoneIngress as the proxies of a mesh see it.
type ZoneIngressInfo struct {
	Name string
	// Zone is the zone the ingress serves (its kuma.io/zone label, else its
	// zone field, else the control plane's own zone).
	Zone string
	// AdvertisedAddress and AdvertisedPort are where other zones reach it.
	AdvertisedAddress string
	AdvertisedPort    uint32
	// AvailableServices are the services it forwards to, of every mesh.
	AvailableServices []mesh.AvailableService
}

// crossZone memoizes the cross-zone endpoint lists of an index.
type crossZone struct {
	once sync.Once
	// zones with an ingress, and the ingress endpoints per service of
	// this mesh, per ingress zone.
	ingressZones map[string]bool
	remote       map[string][]Endpoint

	mu   sync.Mutex
	memo map[[2]string][]Endpoint
}

func (ix *Index) crossZoneInit() {
	cz := &ix.cross
	cz.once.Do(func() {
		cz.ingressZones = map[string]bool{}
		cz.remote = map[string][]Endpoint{}
		cz.memo = map[[2]string][]Endpoint{}
		if !ix.snap.MeshSpec.MTLSEnabled() {
			return
		}
		for _, zi := range ix.snap.ZoneIngresses {
			if zi.Zone == "" || zi.AdvertisedAddress == "" || zi.AdvertisedPort == 0 {
				continue
			}
			cz.ingressZones[zi.Zone] = true
			weights := map[string]uint32{}
			for _, as := range zi.AvailableServices {
				svc := as.Tags[mesh.ServiceTag]
				if svc == "" || as.Mesh != ix.snap.Mesh || (as.ExternalService != nil && *as.ExternalService) {
					continue
				}
				n := uint32(1)
				if as.Instances != nil {
					n = *as.Instances
				}
				weights[svc] += n
			}
			for svc, w := range weights {
				if w == 0 {
					continue
				}
				cz.remote[svc] = append(cz.remote[svc], Endpoint{
					Address: zi.AdvertisedAddress, Port: zi.AdvertisedPort, Zone: zi.Zone, Weight: w,
					ZoneIngress: zi.Name, Tags: map[string]string{mesh.ServiceTag: svc, mesh.ZoneTag: zi.Zone},
				})
			}
		}
		for svc, eps := range cz.remote {
			sort.Slice(eps, func(i, j int) bool {
				if eps[i].Zone != eps[j].Zone {
					return eps[i].Zone < eps[j].Zone
				}
				return eps[i].ZoneIngress < eps[j].ZoneIngress
			})
			cz.remote[svc] = eps
		}
	})
}

// ProxyZone is the zone a proxy of the index is in: its own zone tag,
// else the control plane's zone.
func (ix *Index) ProxyZone(tagged string) string {
	if tagged != "" {
		return tagged
	}
	return ix.snap.LocalZone
}

// EndpointsFor returns the endpoints of a service as a proxy in zone sees
// them: the dataplanes of its zone and of zones without an ingress, and
// one endpoint per ingress of every other zone that has instances of the
// service. Without ingresses it is Endpoints(svc) itself (shared; do not
// modify).
func (ix *Index) EndpointsFor(zone, svc string) []Endpoint {
	ix.crossZoneInit()
	cz := &ix.cross
	if len(cz.ingressZones) == 0 {
		return ix.endpoints[svc]
	}
	zone = ix.ProxyZone(zone)
	key := [2]string{zone, svc}
	cz.mu.Lock()
	defer cz.mu.Unlock()
	if eps, ok := cz.memo[key]; ok {
		return eps
	}
	var out []Endpoint
	for _, ep := range ix.endpoints[svc] {
		if ep.Zone != "" && ep.Zone != zone && cz.ingressZones[ep.Zone] {
			continue // reached through that zone's ingress
		}
		out = append(out, ep)
	}
	for _, ep := range cz.remote[svc] {
		if ep.Zone != zone {
			out = append(out, ep)
		}
	}
	if out == nil && ix.endpoints[svc] != nil {
		out = []Endpoint{}
	}
	out = ix.viaEgress(zone, out) // zoneegress.go
	cz.memo[key] = out
	return out
}

// hashCrossZone writes what EndpointsFor adds to a service's endpoints.
func (ix *Index) hashCrossZone(h *Hasher, svc string) {
	ix.crossZoneInit()
	if len(ix.cross.ingressZones) == 0 {
		return
	}
	h.Raw('z')
	h.String(ix.snap.LocalZone)
	zones := make([]string, 0, len(ix.cross.ingressZones))
	for z := range ix.cross.ingressZones {
		zones = append(zones, z)
	}
	sort.Strings(zones)
	for _, z := range zones {
		h.String(z)
	}
	if len(ix.snap.ZoneEgresses) > 0 {
		h.Raw('e')
		for _, e := range ix.snap.ZoneEgresses {
			h.String(e.Name)
			h.String(e.Zone)
			h.String(e.Address)
			h.Uint(uint64(e.Port))
		}
	}
	for _, ep := range ix.cross.remote[svc] {
		h.String(ep.Address)
		h.Uint(uint64(ep.Port))
		h.String(ep.Zone)
		h.Uint(uint64(ep.Weight))
		h.String(ep.ZoneIngress)
	}
}

// HasCrossZone reports whether an outbound has endpoints behind a zone
// ingress (its upstream TLS then carries an SNI for the ingress).
func (out *Outbound) HasCrossZone() bool {
	for _, ep := range out.Endpoints {
		if ep.ZoneIngress != "" {
			return true
		}
	}
	return false
}
