package build

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// inboundListener builds the listener of one inbound, forwarding to the
// local cluster. Without mTLS it has one plaintext filter chain; with
// mTLS, STRICT has one TLS chain, PERMISSIVE a TLS chain picked by the
// TLS inspector and a plaintext one for everything else.
func inboundListener(p *proxymodel.Proxy, in *proxymodel.Inbound, cluster string) (*listenerv3.Listener, error) {
	l := &listenerv3.Listener{
		Name:             inboundListenerName(in.Address, in.Port),
		Address:          socketAddress(in.Address, in.Port),
		TrafficDirection: corev3.TrafficDirection_INBOUND,
	}
	// The plaintext chain (no mTLS, or PERMISSIVE's fallback) carries no
	// authorization: a plaintext client has no identity to check, and
	// PERMISSIVE exists to let clients outside the mesh in while a mesh
	// moves to mTLS (as in Kuma).
	plainProxy := *p
	plainProxy.MTLS = nil
	plain, err := inboundChain(&plainProxy, in, cluster)
	if err != nil {
		return nil, err
	}
	if p.MTLS == nil {
		l.FilterChains = []*listenerv3.FilterChain{plain}
		return l, nil
	}
	secure, err := inboundChain(p, in, cluster)
	if err != nil {
		return nil, err
	}
	if secure.TransportSocket, err = downstreamTLS(p, in); err != nil {
		return nil, err
	}
	mode := p.MTLS.Mode
	if in.MTLSMode != "" {
		mode = in.MTLSMode // a MeshTLS policy's mode for this inbound
	}
	if mode != proxymodel.MTLSPermissive {
		l.FilterChains = []*listenerv3.FilterChain{secure}
		return l, nil
	}
	inspector, err := anyOf(&tlsinspectorv3.TlsInspector{})
	if err != nil {
		return nil, err
	}
	l.ListenerFilters = []*listenerv3.ListenerFilter{{
		Name:       wellknown.TLSInspector,
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: inspector},
	}}
	secure.FilterChainMatch = &listenerv3.FilterChainMatch{TransportProtocol: "tls"}
	l.FilterChains = []*listenerv3.FilterChain{secure, plain}
	return l, nil
}

// inboundChain is one filter chain of an inbound listener, without its
// transport socket.
func inboundChain(p *proxymodel.Proxy, in *proxymodel.Inbound, cluster string) (*listenerv3.FilterChain, error) {
	var terminal *listenerv3.Filter
	var err error
	if isHTTP(in.Protocol) {
		var httpFilters []*hcmv3.HttpFilter
		if httpFilters, err = inboundHTTPFilters(p, in); err != nil {
			return nil, err
		}
		route := inboundRouteName(in.Service)
		terminal, err = hcmFilter(route, route, httpFilters, func(m *hcmv3.HttpConnectionManager) error {
			return runHooks(func(pl *Plugin) error {
				if pl.InboundHCM == nil {
					return nil
				}
				return pl.InboundHCM(p, in, m)
			})
		})
	} else {
		terminal, err = tcpProxyFilter(cluster, func(tp *tcpv3.TcpProxy) error {
			return runHooks(func(pl *Plugin) error {
				if pl.InboundTCPProxy == nil {
					return nil
				}
				return pl.InboundTCPProxy(p, in, tp)
			})
		})
	}
	if err != nil {
		return nil, err
	}
	filters, err := inboundNetworkFilters(p, in, terminal)
	if err != nil {
		return nil, err
	}
	return &listenerv3.FilterChain{Filters: filters}, nil
}

// inboundNetworkFilters returns the network filters of each inbound filter
// chain, ending with terminal (tcp_proxy or the HTTP connection manager).
// Filters that act on every inbound connection (authorization of TCP
// inbounds) go before terminal here.
func inboundNetworkFilters(p *proxymodel.Proxy, in *proxymodel.Inbound, terminal *listenerv3.Filter) ([]*listenerv3.Filter, error) {
	var filters []*listenerv3.Filter
	if !isHTTP(in.Protocol) { // HTTP is authorized per request (inboundHTTPFilters)
		rbac, err := rbacNetworkFilter(p, in)
		if err != nil {
			return nil, err
		}
		if rbac != nil {
			filters = append(filters, rbac)
		}
	}
	err := runHooks(func(pl *Plugin) error {
		if pl.InboundNetworkFilters == nil {
			return nil
		}
		more, err := pl.InboundNetworkFilters(p, in)
		filters = append(filters, more...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return append(filters, terminal), nil
}

// inboundHTTPFilters returns the HTTP filters of an HTTP inbound's
// connection manager, ending with the router. Filters that act on every
// inbound request (authorization of HTTP inbounds) go before the router
// here.
func inboundHTTPFilters(p *proxymodel.Proxy, in *proxymodel.Inbound) ([]*hcmv3.HttpFilter, error) {
	router, err := routerFilter()
	if err != nil {
		return nil, err
	}
	rbac, err := rbacHTTPFilter(p, in)
	if err != nil || rbac == nil {
		return []*hcmv3.HttpFilter{router}, err
	}
	return []*hcmv3.HttpFilter{rbac, router}, nil
}
