package proxymodel

import (
	"sort"
	"strings"

	"github.com/trellis-mesh/trellis/api/mesh"
)

// ZoneIngressProxy is what a zone ingress must do: listen on
// Address:Port and forward each TLS connection, by its SNI, to the local
// instances of the service the SNI names, without terminating the TLS.
type ZoneIngressProxy struct {
	Name    string
	Zone    string
	Address string
	Port    uint32
	// Services are the services it forwards to, sorted by mesh then
	// service; only services of meshes with mTLS (the SNI comes with the
	// mesh's TLS).
	Services []IngressService
}

// IngressService is one service a zone ingress forwards to.
type IngressService struct {
	Mesh    string
	Service string
	// SNI is the server name clients of other zones send (SNI).
	SNI string
	// Endpoints are the service's ready instances in the ingress's zone.
	Endpoints []Endpoint
}

// SNI is the TLS server name of a mesh service as cross-zone clients send
// it and zone ingresses match it, in Kuma's format:
// "<service>{mesh=<mesh>}".
func SNI(meshName, service string) string {
	return service + "{mesh=" + meshName + "}"
}

// servedBy reports whether a dataplane endpoint of zone epZone is served
// by an ingress of zone ingressZone: the same zone, or an endpoint without
// a zone when the ingress is in the control plane's own zone.
func servedBy(epZone, ingressZone, localZone string) bool {
	if epZone == ingressZone {
		return true
	}
	return epZone == "" && (ingressZone == localZone || ingressZone == "")
}

// ZoneIngressEndpoints returns the instances of the index's services that
// an ingress of zone serves, by service (only meshes with mTLS).
func (ix *Index) ZoneIngressEndpoints(zone string) map[string][]Endpoint {
	out := map[string][]Endpoint{}
	if !ix.snap.MeshSpec.MTLSEnabled() {
		return out
	}
	for svc, eps := range ix.endpoints {
		for _, ep := range eps {
			if servedBy(ep.Zone, zone, ix.snap.LocalZone) {
				out[svc] = append(out[svc], ep)
			}
		}
	}
	return out
}

// BuildZoneIngress returns the model of a zone ingress of zone from the
// indexes of every mesh.
func BuildZoneIngress(name, zone string, spec *mesh.ZoneIngress, meshes []*Index) *ZoneIngressProxy {
	p := &ZoneIngressProxy{Name: name, Zone: zone}
	if spec != nil && spec.Networking != nil {
		p.Address, p.Port = spec.Networking.Address, spec.Networking.Port
	}
	if p.Address == "" {
		p.Address = "0.0.0.0"
	}
	for _, ix := range meshes {
		for svc, eps := range ix.ZoneIngressEndpoints(zone) {
			p.Services = append(p.Services, IngressService{Mesh: ix.snap.Mesh, Service: svc, SNI: SNI(ix.snap.Mesh, svc), Endpoints: eps})
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

// AvailableServices computes a zone ingress's availableServices: per mesh
// (with mTLS) and per distinct tag set of the instances it serves, the
// tags and the instance count, sorted.
func AvailableServices(zone string, meshes []*Index) []mesh.AvailableService {
	var out []mesh.AvailableService
	for _, ix := range meshes {
		counts := map[string]uint32{}
		tagsOf := map[string]map[string]string{}
		for _, eps := range ix.ZoneIngressEndpoints(zone) {
			for _, ep := range eps {
				k := tagKey(ep.Tags)
				counts[k]++
				tagsOf[k] = ep.Tags
			}
		}
		keys := make([]string, 0, len(counts))
		for k := range counts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			n := counts[k]
			tags := make(map[string]string, len(tagsOf[k]))
			for tk, tv := range tagsOf[k] {
				tags[tk] = tv
			}
			out = append(out, mesh.AvailableService{Tags: tags, Instances: &n, Mesh: ix.snap.Mesh})
		}
	}
	return out
}

// tagKey is a canonical string of a tag set.
func tagKey(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(tags[k])
		b.WriteByte(',')
	}
	return b.String()
}

// Mesh returns the name of the index's mesh.
func (ix *Index) Mesh() string { return ix.snap.Mesh }

// SetLocalZone sets the control plane's zone of a freshly made index
// (before any Build or EndpointsFor).
func (ix *Index) SetLocalZone(zone string) { ix.snap.LocalZone = zone }
