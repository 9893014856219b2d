package build

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// ZoneIngress builds the xDS of a zone ingress (docs/xds-contract.md,
// "Zone ingress"): one listener on the ingress's address and port with the
// TLS inspector and, per service it serves, a filter chain matched by the
// service's SNI and the tls transport protocol whose tcp_proxy forwards
// the still-encrypted connection to the service's EDS cluster of local
// instances. The ingress never terminates TLS: it has no transport socket
// and no certificate. Without services there is no listener (a listener
// needs a filter chain).
func ZoneIngress(p *proxymodel.ZoneIngressProxy) (*Resources, error) {
	r := &Resources{}
	if len(p.Services) == 0 {
		return r, nil
	}
	if p.Port == 0 || p.Port > 0xffff {
		return nil, fmt.Errorf("zone ingress %s: networking.port %d is not a port", p.Name, p.Port)
	}
	inspector, err := anyOf(&tlsinspectorv3.TlsInspector{})
	if err != nil {
		return nil, err
	}
	l := &listenerv3.Listener{
		Name:             inboundListenerName(p.Address, p.Port),
		Address:          socketAddress(p.Address, p.Port),
		TrafficDirection: corev3.TrafficDirection_INBOUND,
		ListenerFilters: []*listenerv3.ListenerFilter{{
			Name:       wellknown.TLSInspector,
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: inspector},
		}},
	}
	for _, s := range p.Services {
		cluster := ingressClusterName(s.Mesh, s.Service)
		f, err := tcpProxyFilter(cluster, nil)
		if err != nil {
			return nil, err
		}
		l.FilterChains = append(l.FilterChains, &listenerv3.FilterChain{
			FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{s.SNI}, TransportProtocol: "tls"},
			Filters:          []*listenerv3.Filter{f},
		})
		r.Clusters = append(r.Clusters, edsCluster(cluster, mesh.ProtocolTCP))
		r.Endpoints = append(r.Endpoints, loadAssignment(cluster, s.Endpoints))
	}
	r.Listeners = []*listenerv3.Listener{l}
	r.sort()
	return r, nil
}

// ingressClusterName is the cluster of a mesh's service on a zone proxy
// (which serves every mesh): "<mesh>:<service>".
func ingressClusterName(meshName, service string) string {
	return meshName + ":" + service
}
