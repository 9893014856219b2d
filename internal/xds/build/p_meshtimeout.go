package build

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"

	"github.com/trellis-mesh/trellis/api/policy/meshtimeout"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// MeshTimeout (docs/xds-contract.md, "Traffic policies"). Outbound (to[]):
// the cluster's connect timeout and upstream HTTP connection options,
// the request and stream idle timeouts of every route, the tcp_proxy
// idle timeout. Inbound (from[] Mesh rule and rules[]): the local
// cluster's connect timeout, the HCM's connection and stream timeouts,
// the inbound route's request timeout, the tcp_proxy idle timeout. Zero
// durations are sent as zero: Envoy reads them as "disabled".

const meshTimeoutKind = "MeshTimeout"

func init() {
	register(Plugin{
		Name:             meshTimeoutKind,
		Order:            100,
		OutboundCluster:  timeoutOutboundCluster,
		OutboundRoute:    timeoutOutboundRoute,
		OutboundTCPProxy: timeoutOutboundTCPProxy,
		InboundCluster:   timeoutInboundCluster,
		InboundHCM:       timeoutInboundHCM,
		InboundRoute:     timeoutInboundRoute,
		InboundTCPProxy:  timeoutInboundTCPProxy,
	})
}

func timeoutOutboundCluster(p *proxymodel.Proxy, out *proxymodel.Outbound, c *clusterv3.Cluster) error {
	conf, ok, err := outboundConf[meshtimeout.Conf](p, meshTimeoutKind, out)
	if err != nil || !ok {
		return err
	}
	if conf.ConnectionTimeout != nil {
		c.ConnectTimeout = pbDuration(conf.ConnectionTimeout)
	}
	if !isHTTP(out.Protocol) {
		return nil
	}
	return timeoutHTTPOptions(conf, func(edit func(*corev3.HttpProtocolOptions)) error {
		return editCommonHTTPOptions(c, edit)
	})
}

// timeoutHTTPOptions applies the connection-level HTTP timeouts of conf
// through apply, when conf has any.
func timeoutHTTPOptions(conf meshtimeout.Conf, apply func(func(*corev3.HttpProtocolOptions)) error) error {
	h := conf.HTTP
	if h == nil {
		h = &meshtimeout.HTTP{}
	}
	if conf.IdleTimeout == nil && h.MaxConnectionDuration == nil && h.MaxStreamDuration == nil {
		return nil
	}
	return apply(func(o *corev3.HttpProtocolOptions) {
		if conf.IdleTimeout != nil {
			o.IdleTimeout = pbDuration(conf.IdleTimeout)
		}
		if h.MaxConnectionDuration != nil {
			o.MaxConnectionDuration = pbDuration(h.MaxConnectionDuration)
		}
		if h.MaxStreamDuration != nil {
			o.MaxStreamDuration = pbDuration(h.MaxStreamDuration)
		}
	})
}

func timeoutOutboundRoute(p *proxymodel.Proxy, out *proxymodel.Outbound, rc *routev3.RouteConfiguration) error {
	conf, ok, err := outboundConf[meshtimeout.Conf](p, meshTimeoutKind, out)
	if err != nil || !ok || conf.HTTP == nil {
		return err
	}
	return routeActions(rc, func(a *routev3.RouteAction) error {
		if conf.HTTP.RequestTimeout != nil {
			a.Timeout = pbDuration(conf.HTTP.RequestTimeout)
		}
		if conf.HTTP.StreamIdleTimeout != nil {
			a.IdleTimeout = pbDuration(conf.HTTP.StreamIdleTimeout)
		}
		return nil
	})
}

func timeoutOutboundTCPProxy(p *proxymodel.Proxy, out *proxymodel.Outbound, tp *tcpv3.TcpProxy) error {
	conf, ok, err := outboundConf[meshtimeout.Conf](p, meshTimeoutKind, out)
	if err != nil || !ok {
		return err
	}
	if conf.IdleTimeout != nil {
		tp.IdleTimeout = pbDuration(conf.IdleTimeout)
	}
	return nil
}

func timeoutInboundCluster(p *proxymodel.Proxy, in *proxymodel.Inbound, c *clusterv3.Cluster) error {
	conf, ok, err := inboundConf[meshtimeout.Conf](p, meshTimeoutKind, in)
	if err != nil || !ok {
		return err
	}
	if conf.ConnectionTimeout != nil {
		c.ConnectTimeout = pbDuration(conf.ConnectionTimeout)
	}
	return nil
}

func timeoutInboundHCM(p *proxymodel.Proxy, in *proxymodel.Inbound, m *hcmv3.HttpConnectionManager) error {
	conf, ok, err := inboundConf[meshtimeout.Conf](p, meshTimeoutKind, in)
	if err != nil || !ok {
		return err
	}
	if h := conf.HTTP; h != nil {
		if h.StreamIdleTimeout != nil {
			m.StreamIdleTimeout = pbDuration(h.StreamIdleTimeout)
		}
		if h.RequestHeadersTimeout != nil {
			m.RequestHeadersTimeout = pbDuration(h.RequestHeadersTimeout)
		}
	}
	return timeoutHTTPOptions(conf, func(edit func(*corev3.HttpProtocolOptions)) error {
		if m.CommonHttpProtocolOptions == nil {
			m.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{}
		}
		edit(m.CommonHttpProtocolOptions)
		return nil
	})
}

func timeoutInboundRoute(p *proxymodel.Proxy, in *proxymodel.Inbound, rc *routev3.RouteConfiguration) error {
	conf, ok, err := inboundConf[meshtimeout.Conf](p, meshTimeoutKind, in)
	if err != nil || !ok || conf.HTTP == nil || conf.HTTP.RequestTimeout == nil {
		return err
	}
	return routeActions(rc, func(a *routev3.RouteAction) error {
		a.Timeout = pbDuration(conf.HTTP.RequestTimeout)
		return nil
	})
}

func timeoutInboundTCPProxy(p *proxymodel.Proxy, in *proxymodel.Inbound, tp *tcpv3.TcpProxy) error {
	conf, ok, err := inboundConf[meshtimeout.Conf](p, meshTimeoutKind, in)
	if err != nil || !ok {
		return err
	}
	if conf.IdleTimeout != nil {
		tp.IdleTimeout = pbDuration(conf.IdleTimeout)
	}
	return nil
}
