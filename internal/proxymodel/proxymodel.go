// Package proxymodel turns a mesh snapshot (every resource of one mesh)
// into the model of one proxy: which inbounds it serves, which outbounds it
// offers and to which endpoints. It is pure: no store, no Envoy types. The
// xDS builder (internal/xds/build) turns a Proxy into Envoy resources.
package proxymodel

import (
	"fmt"
	"sort"

	"github.com/trellis-mesh/trellis/api/mesh"
)

// DefaultOutboundAddress is where outbound listeners bind when the
// Dataplane does not say.
const DefaultOutboundAddress = "127.0.0.1"

// DefaultServiceAddress is where the application listens when the inbound
// does not say.
const DefaultServiceAddress = "127.0.0.1"

// NamedDataplane is one Dataplane of the mesh.
type NamedDataplane struct {
	Name string
	// Labels are the resource's labels (Dataplane targetRefs select by them).
	Labels map[string]string
	Spec   *mesh.Dataplane
	// Version is the Dataplane's store version, when the snapshot was read
	// from a store: Index.Fingerprint then identifies the spec by it
	// instead of hashing it. Empty means unknown.
	Version string
}

// MeshSnapshot is everything of one mesh a proxy's configuration depends on.
type MeshSnapshot struct {
	Mesh       string
	MeshSpec   *mesh.Mesh
	Dataplanes []NamedDataplane
	// Offline names Dataplanes whose proxy was connected and has left:
	// their inbounds are served by that proxy, so they take no traffic.
	// Dataplanes that never had a proxy connected are not offline.
	Offline map[string]bool
	// Policies holds the mesh's policies by kind ("MeshTrafficPermission"),
	// for the appliers (policies.go).
	Policies map[string][]PolicyItem
	// VIPs are the virtual IPs and DNS names of the mesh's services, by
	// service (internal/vip allocates them; vips.go gives transparent
	// proxies theirs).
	VIPs map[string]VIP
	// ZoneIngresses are the zone ingresses known here (this zone's and
	// those synced from other zones), for cross-zone endpoints
	// (crosszone.go); LocalZone is the control plane's zone (empty when
	// standalone).
	ZoneIngresses []ZoneIngressInfo
	LocalZone     string
	// ZoneEgresses are the zone egresses of this zone (zoneegress.go).
	ZoneEgresses []ZoneEgressInfo

	// matchers are the policy matchers Match makes, once per kind.
	matchers *matcherSet
}

// Proxy is what one proxy must do.
type Proxy struct {
	Mesh string
	Name string
	// Services are the proxy's own kuma.io/service values.
	Services []string
	// Zone is the kuma.io/zone tag of the proxy's first inbound (empty
	// when it has none): locality-aware load balancing prefers endpoints
	// of this zone.
	Zone      string
	Inbounds  []Inbound
	Outbounds []Outbound
	// MTLS is set when the mesh has mTLS enabled (security.go).
	MTLS *MTLS
	// Policies holds, per targetRef policy kind, what the mesh's policies
	// of that kind say about the proxy (MatchApplier, policies.go).
	Policies map[string]*Matched
	// TransparentProxy is the dataplane's networking.transparentProxying;
	// nil when the proxy is not transparent (its outbounds are then the
	// ones the Dataplane lists).
	TransparentProxy *TransparentProxy
	// VIPs are the virtual addresses and DNS names of the services a
	// transparent proxy may reach (its reachable services, or every
	// service of the mesh), sorted by Service; empty without
	// TransparentProxy.
	VIPs []VIP
	// DNSPort is the port of the proxy's DNS server on 127.0.0.1, which
	// the proxy announces in its node metadata (dataplane.dns.port); zero
	// when it runs none.
	DNSPort uint32
	// Address is the Dataplane's networking.address (the MeshMetric
	// listener binds to it).
	Address string
	// AdminPort is the Dataplane's networking.admin.port, the port of the
	// proxy's admin server on 127.0.0.1; DefaultAdminPort when unset.
	AdminPort uint32
}

// DefaultAdminPort is the admin port of a Dataplane that sets none
// (Kuma's and Envoy's habit).
const DefaultAdminPort = 9901

// TransparentProxy is a Dataplane's networking.transparentProxying: the
// proxy's host redirects inbound and outbound TCP to the proxy
// (trellisctl install transparent-proxy).
type TransparentProxy struct {
	RedirectPortInbound  uint32
	RedirectPortOutbound uint32
	// IPFamilyMode is the Dataplane's value (api/mesh IPFamily*: DualStack,
	// IPv4, IPv6; empty means DualStack).
	IPFamilyMode string
	// ReachableServices limits the outbounds to these services (all when
	// empty).
	ReachableServices []string
	// DirectAccessServices are services the application may call by an
	// instance's own address:port ("*" for all).
	DirectAccessServices []string
	// Passthrough is the Mesh's networking.outbound.passthrough (default
	// true): connections to addresses outside the mesh go to their
	// original destination; otherwise they are closed.
	Passthrough bool
}

// VIP is the virtual address of a mesh service and its DNS name.
type VIP struct {
	// Service is the kuma.io/service value.
	Service string
	// Name is the DNS name, such as "backend.mesh".
	Name string
	// IPv4 is in 240.0.0.0/4; IPv6, when set, in the IPv6 VIP range.
	IPv4, IPv6 string
}

// Inbound is one service the proxy serves: a listener on Address:Port that
// forwards to the application at ServiceAddress:ServicePort.
type Inbound struct {
	Address        string
	Port           uint32
	ServiceAddress string
	ServicePort    uint32
	Service        string
	Protocol       string
	Tags           map[string]string
	// Permissions is the merged MeshTrafficPermission of this inbound;
	// it is enforced only when the proxy has MTLS.
	Permissions *Permissions
	// MTLSMode overrides the mesh's mTLS mode (MTLSStrict or
	// MTLSPermissive) for this inbound, as a MeshTLS policy says; empty
	// keeps the mesh's. It matters only when the proxy has MTLS.
	MTLSMode string
}

// Outbound is one service the proxy offers the application on a local
// Address:Port, load balanced over Endpoints.
type Outbound struct {
	Address   string
	Port      uint32
	Service   string
	Protocol  string
	Endpoints []Endpoint
	// HTTPRoutes, when not nil, replace the outbound's default route to
	// its service (MeshHTTPRoute, routes.go); TCPBackends, when not nil,
	// split its connections (MeshTCPRoute). RouteClusters are the
	// clusters they name besides the outbound's own.
	HTTPRoutes    []HTTPRoute
	TCPBackends   []RouteBackend
	RouteClusters []RouteCluster
}

// Endpoint is one ready inbound of a destination service.
type Endpoint struct {
	Address string
	Port    uint32
	Zone    string
	Weight  uint32
	// Dataplane names the proxy that serves it.
	Dataplane string
	// Tags are the inbound's tags (shared with the Dataplane; do not
	// modify), for subsets of a service.
	Tags map[string]string
	// ZoneIngress names the zone ingress this endpoint stands for (its
	// advertised address; Weight is its instance count), empty for a
	// dataplane's own inbound (crosszone.go).
	ZoneIngress string
}

// Index holds a mesh's endpoints and protocols per service, computed once
// per snapshot and shared by every proxy built from it.
type Index struct {
	snap      *MeshSnapshot
	byName    map[string]*mesh.Dataplane
	endpoints map[string][]Endpoint
	protocol  map[string]string
	named     map[string]NamedDataplane
	appliers  []Applier
	// in memoizes what Fingerprint hashes (fingerprint.go).
	in inputs
	// routes memoizes the services route policies name (routes.go).
	routes routeServicesMemo
	// tproxy memoizes what transparent outbounds need (transparent.go).
	tproxy tproxyMemo
	// cross memoizes cross-zone endpoints (crosszone.go).
	cross crossZone
}

// NewIndex indexes a snapshot; Build runs appliers on every proxy model.
func NewIndex(snap *MeshSnapshot, appliers ...Applier) *Index {
	ix := &Index{
		snap:      snap,
		byName:    map[string]*mesh.Dataplane{},
		endpoints: map[string][]Endpoint{},
		protocol:  map[string]string{},
		named:     map[string]NamedDataplane{},
		appliers:  appliers,
	}
	for _, dp := range snap.Dataplanes {
		ix.byName[dp.Name] = dp.Spec
		ix.named[dp.Name] = dp
		if dp.Spec == nil || dp.Spec.Networking == nil {
			continue
		}
		offline := snap.Offline[dp.Name]
		n := dp.Spec.Networking
		for i := range n.Inbound {
			in := &n.Inbound[i]
			svc := in.Tags[mesh.ServiceTag]
			if svc == "" {
				continue
			}
			ix.noteProtocol(svc, in.Protocol())
			if offline || !ready(in) {
				continue
			}
			addr := n.Address
			if n.AdvertisedAddress != "" {
				addr = n.AdvertisedAddress
			}
			if in.Address != "" {
				addr = in.Address
			}
			ix.endpoints[svc] = append(ix.endpoints[svc], Endpoint{
				Address: addr, Port: in.Port, Zone: in.Tags[mesh.ZoneTag], Weight: 1, Dataplane: dp.Name, Tags: in.Tags,
			})
		}
	}
	for svc, eps := range ix.endpoints {
		sort.Slice(eps, func(i, j int) bool {
			if eps[i].Address != eps[j].Address {
				return eps[i].Address < eps[j].Address
			}
			if eps[i].Port != eps[j].Port {
				return eps[i].Port < eps[j].Port
			}
			return eps[i].Dataplane < eps[j].Dataplane
		})
		ix.endpoints[svc] = eps
	}
	return ix
}

// noteProtocol records a service's protocol; inbounds that disagree make
// it tcp, the protocol every proxy can carry.
func (ix *Index) noteProtocol(svc, proto string) {
	if cur, seen := ix.protocol[svc]; seen && cur != proto {
		ix.protocol[svc] = mesh.ProtocolTCP
		return
	}
	ix.protocol[svc] = proto
}

func ready(in *mesh.Inbound) bool {
	if in.EffectiveState() != mesh.InboundReady {
		return false
	}
	return in.Health == nil || in.Health.Ready == nil || *in.Health.Ready
}

// Endpoints returns the ready endpoints of a service (shared; do not modify).
func (ix *Index) Endpoints(svc string) []Endpoint { return ix.endpoints[svc] }

// Protocol returns a service's protocol, tcp when unknown.
func (ix *Index) Protocol(svc string) string {
	if p, ok := ix.protocol[svc]; ok {
		return p
	}
	return mesh.ProtocolTCP
}

// Build returns the model of the named proxy.
func (ix *Index) Build(name string) (*Proxy, error) {
	dp, ok := ix.byName[name]
	if !ok {
		return nil, fmt.Errorf("dataplane %q is not in mesh %q", name, ix.snap.Mesh)
	}
	p := &Proxy{Mesh: ix.snap.Mesh, Name: name, Services: dp.ServiceNames(), AdminPort: DefaultAdminPort}
	if dp.Networking == nil {
		return ix.apply(name, p)
	}
	n := dp.Networking
	p.Address = n.Address
	if n.Admin != nil && n.Admin.Port != 0 {
		p.AdminPort = n.Admin.Port
	}
	p.TransparentProxy = transparentProxyOf(n.TransparentProxying, ix.snap.MeshSpec)
	ix.fillVIPs(p)
	for i := range n.Inbound {
		in := &n.Inbound[i]
		if in.EffectiveState() == mesh.InboundIgnored {
			continue
		}
		addr := n.Address
		if in.Address != "" {
			addr = in.Address
		}
		svcAddr := in.ServiceAddress
		if svcAddr == "" {
			svcAddr = DefaultServiceAddress
		}
		if len(p.Inbounds) == 0 {
			p.Zone = in.Tags[mesh.ZoneTag]
		}
		p.Inbounds = append(p.Inbounds, Inbound{
			Address: addr, Port: in.Port,
			ServiceAddress: svcAddr, ServicePort: in.EffectiveServicePort(),
			Service: in.Tags[mesh.ServiceTag], Protocol: in.Protocol(), Tags: in.Tags,
		})
	}
	for _, out := range n.Outbound {
		svc := out.Tags[mesh.ServiceTag]
		if svc == "" {
			continue // backendRef outbounds need MeshService resources (later)
		}
		addr := out.Address
		if addr == "" {
			addr = DefaultOutboundAddress
		}
		proto := ix.Protocol(svc)
		if tagged := out.Tags[mesh.ProtocolTag]; tagged != "" {
			proto = tagged
		}
		p.Outbounds = append(p.Outbounds, Outbound{
			Address: addr, Port: out.Port, Service: svc, Protocol: proto, Endpoints: ix.EndpointsFor(p.Zone, svc),
		})
	}
	// The VIP outbounds of a transparent proxy (p.VIPs must be filled by now).
	ix.AddTransparentOutbounds(p)
	if _, err := ix.apply(name, p); err != nil {
		return nil, err
	}
	ix.resolveRouteClusters(p)
	return p, nil
}

// Services returns every service name that has at least one inbound in the
// mesh, sorted (proxyless clients get all of them).
func (ix *Index) Services() []string {
	out := make([]string, 0, len(ix.protocol))
	for svc := range ix.protocol {
		out = append(out, svc)
	}
	sort.Strings(out)
	return out
}

// Dataplane returns the named Dataplane of the snapshot.
func (ix *Index) Dataplane(name string) (NamedDataplane, bool) {
	dp, ok := ix.named[name]
	return dp, ok
}
