// Package build turns a proxy model into Envoy xDS v3 resources. It is the
// only control-plane package that knows Envoy types; it reads no store and
// is pure and deterministic: the same model gives byte-identical resources.
// docs/xds-contract.md lists the names and fields it emits.
package build

import (
	"fmt"
	"sort"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// Timeouts the builder sets until MeshTimeout is applied.
const (
	connectTimeout = 5 * time.Second
	routeTimeout   = 15 * time.Second
)

// Resources is the xDS of one proxy, each list sorted by name.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	// Secrets are the SDS secrets (identities and trust bundle) of an mTLS
	// proxy; empty otherwise.
	Secrets []*tlsv3.Secret
}

// ByType returns the resources keyed by xDS type URL, as go-control-plane's
// snapshot cache takes them.
func (r *Resources) ByType() map[resourcev3.Type][]types.Resource {
	out := map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: nil, resourcev3.RouteType: nil,
		resourcev3.ClusterType: nil, resourcev3.EndpointType: nil,
		resourcev3.SecretType: nil,
	}
	for _, l := range r.Listeners {
		out[resourcev3.ListenerType] = append(out[resourcev3.ListenerType], l)
	}
	for _, rc := range r.Routes {
		out[resourcev3.RouteType] = append(out[resourcev3.RouteType], rc)
	}
	for _, c := range r.Clusters {
		out[resourcev3.ClusterType] = append(out[resourcev3.ClusterType], c)
	}
	for _, e := range r.Endpoints {
		out[resourcev3.EndpointType] = append(out[resourcev3.EndpointType], e)
	}
	for _, sec := range r.Secrets {
		out[resourcev3.SecretType] = append(out[resourcev3.SecretType], sec)
	}
	return out
}

// Names used in generated resources (docs/xds-contract.md).
func inboundListenerName(addr string, port uint32) string {
	return fmt.Sprintf("inbound:%s:%d", addr, port)
}
func outboundListenerName(addr string, port uint32) string {
	return fmt.Sprintf("outbound:%s:%d", addr, port)
}
func localClusterName(port uint32) string { return fmt.Sprintf("localhost:%d", port) }
func inboundRouteName(svc string) string  { return "inbound:" + svc }
func outboundRouteName(svc string) string { return "outbound:" + svc }
func isHTTP(protocol string) bool         { return protocol == mesh.ProtocolHTTP || isHTTP2(protocol) }
func isHTTP2(protocol string) bool {
	return protocol == mesh.ProtocolHTTP2 || protocol == mesh.ProtocolGRPC
}
func sortByName[T interface{ GetName() string }](s []T) {
	sort.Slice(s, func(i, j int) bool { return s[i].GetName() < s[j].GetName() })
}

// Part says which of a proxy's resources SidecarPart builds. The control
// plane builds the inbound and outbound parts of a proxy separately and
// shares outbound parts between proxies (internal/xds/server/share.go).
type Part int

// The parts of a sidecar's resources.
const (
	// PartAll is every resource of the proxy.
	PartAll Part = iota
	// PartInbound is what comes from the inbounds and the proxy's own
	// settings: Plugin.ProxyInbound hooks run for it.
	PartInbound
	// PartOutbound is what comes from the outbounds: Plugin.ProxyOutbound
	// hooks run for it.
	PartOutbound
)

// Sidecar builds the resources of a sidecar proxy. When the proxy has
// MTLS, inbound listeners terminate mTLS, outbound clusters originate it,
// and the secrets they reference are included. The registered policy
// plugins (plugin.go) edit the resources as they are built.
func Sidecar(p *proxymodel.Proxy) (*Resources, error) {
	return SidecarPart(p, PartAll)
}

// SidecarPart builds one part of a sidecar's resources: the inbounds and
// outbounds of p are built whatever the part (the caller leaves out what
// belongs to the other part); part decides which proxy-wide plugin hooks
// run.
func SidecarPart(p *proxymodel.Proxy, part Part) (*Resources, error) {
	r := &Resources{}
	seenLocal := map[string]bool{}
	for i := range p.Inbounds {
		in := &p.Inbounds[i]
		cluster := localClusterName(in.ServicePort)
		if !seenLocal[cluster] {
			seenLocal[cluster] = true
			c := staticCluster(cluster, in.ServiceAddress, in.ServicePort, in.Protocol)
			err := runHooks(func(pl *Plugin) error {
				if pl.InboundCluster == nil {
					return nil
				}
				return pl.InboundCluster(p, in, c)
			})
			if err != nil {
				return nil, fmt.Errorf("inbound %s:%d: %w", in.Address, in.Port, err)
			}
			r.Clusters = append(r.Clusters, c)
		}
		l, err := inboundListener(p, in, cluster)
		if err != nil {
			return nil, fmt.Errorf("inbound %s:%d: %w", in.Address, in.Port, err)
		}
		r.Listeners = append(r.Listeners, l)
		if isHTTP(in.Protocol) {
			rc := routeConfig(inboundRouteName(in.Service), in.Service, cluster)
			err := runHooks(func(pl *Plugin) error {
				if pl.InboundRoute == nil {
					return nil
				}
				return pl.InboundRoute(p, in, rc)
			})
			if err != nil {
				return nil, fmt.Errorf("inbound %s:%d: %w", in.Address, in.Port, err)
			}
			r.Routes = append(r.Routes, rc)
		}
	}
	seenService := map[string]bool{}
	for i := range p.Outbounds {
		out := &p.Outbounds[i]
		if err := r.outbound(p, out, seenService); err != nil {
			return nil, fmt.Errorf("outbound %s:%d (%s): %w", out.Address, out.Port, out.Service, err)
		}
	}
	if part != PartOutbound {
		if err := runHooks(func(pl *Plugin) error {
			if pl.ProxyInbound == nil {
				return nil
			}
			return pl.ProxyInbound(p, r)
		}); err != nil {
			return nil, err
		}
	}
	if part != PartInbound {
		if err := runHooks(func(pl *Plugin) error {
			if pl.ProxyOutbound == nil {
				return nil
			}
			return pl.ProxyOutbound(p, r)
		}); err != nil {
			return nil, err
		}
	}
	if p.MTLS != nil {
		r.Secrets = secrets(p.MTLS)
	}
	r.sort()
	return r, nil
}

// outbound adds the listener of one outbound and, the first time a
// service is seen, its route, cluster and endpoints.
func (r *Resources) outbound(p *proxymodel.Proxy, out *proxymodel.Outbound, seenService map[string]bool) error {
	name := outboundListenerName(out.Address, out.Port)
	var l *listenerv3.Listener
	var err error
	if isHTTP(out.Protocol) {
		l, err = httpListener(name, out.Address, out.Port, corev3.TrafficDirection_OUTBOUND, outboundRouteName(out.Service),
			func(m *hcmv3.HttpConnectionManager) error {
				return runHooks(func(pl *Plugin) error {
					if pl.OutboundHCM == nil {
						return nil
					}
					return pl.OutboundHCM(p, out, m)
				})
			})
	} else {
		l, err = tcpListener(name, out.Address, out.Port, corev3.TrafficDirection_OUTBOUND, out.Service,
			func(tp *tcpv3.TcpProxy) error {
				return runHooks(func(pl *Plugin) error {
					if pl.OutboundTCPProxy == nil {
						return nil
					}
					return pl.OutboundTCPProxy(p, out, tp)
				})
			})
	}
	if err != nil {
		return err
	}
	r.Listeners = append(r.Listeners, l)
	if seenService[out.Service] {
		return nil // two outbounds to one service share its cluster and route
	}
	seenService[out.Service] = true
	if isHTTP(out.Protocol) {
		rc := routeConfig(outboundRouteName(out.Service), out.Service, out.Service)
		err := runHooks(func(pl *Plugin) error {
			if pl.OutboundRoute == nil {
				return nil
			}
			return pl.OutboundRoute(p, out, rc)
		})
		if err != nil {
			return err
		}
		r.Routes = append(r.Routes, rc)
	}
	if err := r.outboundCluster(p, out, edsCluster(out.Service, out.Protocol), loadAssignment(out.Service, out.Endpoints)); err != nil {
		return err
	}
	return r.routeClusters(p, out) // subsets and other services its routes name (p_route.go)
}

// outboundCluster adds a cluster of an outbound and its load assignment,
// with upstream mTLS when the proxy has MTLS, after the plugins' hooks.
// Route plugins call it for the extra clusters they make (subsets).
func (r *Resources) outboundCluster(p *proxymodel.Proxy, out *proxymodel.Outbound, c *clusterv3.Cluster, cla *endpointv3.ClusterLoadAssignment) error {
	if p.MTLS != nil {
		ts, err := upstreamTLS(p, out, out.Service, out.Protocol)
		if err != nil {
			return err
		}
		c.TransportSocket = ts
	}
	err := runHooks(func(pl *Plugin) error {
		if pl.OutboundCluster != nil {
			if err := pl.OutboundCluster(p, out, c); err != nil {
				return err
			}
		}
		if pl.OutboundEndpoints != nil {
			return pl.OutboundEndpoints(p, out, cla)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.Clusters = append(r.Clusters, c)
	r.Endpoints = append(r.Endpoints, cla)
	return nil
}

func (r *Resources) sort() {
	sortByName(r.Listeners)
	sortByName(r.Routes)
	sortByName(r.Clusters)
	sortByName(r.Secrets)
	sort.Slice(r.Endpoints, func(i, j int) bool { return r.Endpoints[i].ClusterName < r.Endpoints[j].ClusterName })
}
