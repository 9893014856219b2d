package build

import (
	"fmt"
	"net/netip"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	originaldstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// A transparent proxy (Proxy.TransparentProxy) gets its traffic from the
// host's iptables rules on two redirect ports instead of on the addresses
// of its listeners. Its listeners there recover each connection's original
// destination (the original_dst listener filter) and pick a filter chain
// by it:
//
//   - outbound:passthrough:ipv4 (0.0.0.0:redirectPortOutbound; and
//     outbound:passthrough:ipv6 on [::] in dual stack): one chain per VIP
//     outbound, matched by the VIP and port, with the network filters the
//     outbound's own listener would have (that listener is not emitted);
//     one chain per endpoint of a direct-access service, matched by the
//     endpoint's address and port, with the filters of the service's
//     first VIP outbound; and, when the mesh allows passthrough, a default
//     chain proxying everything else to its original destination
//     (cluster outbound:passthrough:ipv4, ORIGINAL_DST).
//   - inbound:passthrough:ipv4 (0.0.0.0:redirectPortInbound; ipv6 on
//     [::]): the chains of each inbound's listener, matched by the
//     inbound's port besides what they matched (the inbound listeners are
//     not emitted: the application binds those ports), and a default
//     chain passing other inbound connections to their original
//     destination (cluster inbound:passthrough:ipv4).

// Names of the transparent proxy's listeners and passthrough clusters
// (Kuma's).
const (
	outboundPassthroughV4 = "outbound:passthrough:ipv4"
	outboundPassthroughV6 = "outbound:passthrough:ipv6"
	inboundPassthroughV4  = "inbound:passthrough:ipv4"
	inboundPassthroughV6  = "inbound:passthrough:ipv6"
)

func init() {
	register(Plugin{
		Name: "TransparentProxy",
		// Last: the listeners it takes apart are complete by then.
		Order:         1000,
		ProxyInbound:  transparentInbound,
		ProxyOutbound: transparentOutbound,
	})
}

// takeListener removes the named listener from r and returns it (nil when
// r has none).
func (r *Resources) takeListener(name string) *listenerv3.Listener {
	i := slices.IndexFunc(r.Listeners, func(l *listenerv3.Listener) bool { return l.GetName() == name })
	if i < 0 {
		return nil
	}
	l := r.Listeners[i]
	r.Listeners = slices.Delete(r.Listeners, i, i+1)
	return l
}

// familyChains are the filter chains of the IPv4 and the IPv6 listener.
type familyChains struct{ v4, v6 []*listenerv3.FilterChain }

func (f *familyChains) add(a netip.Addr, fc *listenerv3.FilterChain) {
	if a.Is4() {
		f.v4 = append(f.v4, fc)
	} else {
		f.v6 = append(f.v6, fc)
	}
}

// addDirectAccess adds a chain per endpoint of the direct-access
// outbounds, matched by the endpoint's address and port, with the filters
// of its service's VIP outbound.
func (f *familyChains) addDirectAccess(direct []*proxymodel.Outbound, filters map[string][]*listenerv3.Filter, vips map[netip.Addr]bool) {
	seen := map[netip.AddrPort]bool{}
	for _, out := range direct {
		for _, ep := range out.Endpoints {
			a, err := netip.ParseAddr(ep.Address)
			if err != nil || ep.Port == 0 || ep.Port > 0xffff {
				continue // hostnames cannot be matched by a prefix range
			}
			a = a.Unmap()
			key := netip.AddrPortFrom(a, uint16(ep.Port))
			if seen[key] || vips[a] {
				continue
			}
			seen[key] = true
			fc := &listenerv3.FilterChain{
				FilterChainMatch: &listenerv3.FilterChainMatch{
					PrefixRanges:    []*corev3.CidrRange{hostRange(a)},
					DestinationPort: wrapperspb.UInt32(ep.Port),
				},
			}
			for _, fl := range filters[out.Service] {
				fc.Filters = append(fc.Filters, proto.Clone(fl).(*listenerv3.Filter))
			}
			f.add(a, fc)
		}
	}
}

// transparentOutbound moves the listeners of a transparent proxy's VIP
// outbounds into its outbound redirect listener.
func transparentOutbound(p *proxymodel.Proxy, r *Resources) error {
	tp := p.TransparentProxy
	if tp == nil {
		return nil
	}
	vips := map[netip.Addr]bool{}
	for _, v := range p.VIPs {
		for _, s := range []string{v.IPv4, v.IPv6} {
			if a, err := netip.ParseAddr(s); err == nil {
				vips[a.Unmap()] = true
			}
		}
	}
	var chains familyChains
	// filters holds the network filters of each service's first VIP
	// outbound, for its direct-access chains.
	filters := map[string][]*listenerv3.Filter{}
	var direct []*proxymodel.Outbound
	for i := range p.Outbounds {
		out := &p.Outbounds[i]
		a, err := netip.ParseAddr(out.Address)
		if err != nil || !vips[a.Unmap()] {
			continue // a listener of the Dataplane's own outbounds stays bound
		}
		a = a.Unmap()
		l := r.takeListener(outboundListenerName(out.Address, out.Port))
		if l == nil || len(l.GetFilterChains()) != 1 {
			return fmt.Errorf("outbound %s:%d (%s): no listener with one filter chain to redirect", out.Address, out.Port, out.Service)
		}
		fc := l.FilterChains[0]
		fc.FilterChainMatch = &listenerv3.FilterChainMatch{
			PrefixRanges:    []*corev3.CidrRange{hostRange(a)},
			DestinationPort: wrapperspb.UInt32(out.Port),
		}
		chains.add(a, fc)
		if _, seen := filters[out.Service]; !seen {
			filters[out.Service] = fc.Filters
			if tp.DirectAccess(out.Service) {
				direct = append(direct, out)
			}
		}
	}
	chains.addDirectAccess(direct, filters, vips)
	families := []struct {
		on          bool
		name, addr  string
		chains      []*listenerv3.FilterChain
		passthrough string
	}{
		{tp.IPv4(), outboundPassthroughV4, "0.0.0.0", chains.v4, outboundPassthroughV4},
		{tp.IPv6(), outboundPassthroughV6, "::", chains.v6, outboundPassthroughV6},
	}
	for _, f := range families {
		if !f.on {
			continue
		}
		var def *listenerv3.FilterChain
		if tp.Passthrough {
			var err error
			if def, err = passthroughChain(f.passthrough); err != nil {
				return err
			}
			r.Clusters = append(r.Clusters, originalDstCluster(f.passthrough))
		}
		if len(f.chains) == 0 && def == nil {
			// Nothing to serve: connections redirected here are refused.
			continue
		}
		l, err := redirectListener(f.name, f.addr, tp.RedirectPortOutbound, corev3.TrafficDirection_OUTBOUND, false)
		if err != nil {
			return err
		}
		l.FilterChains, l.DefaultFilterChain = f.chains, def
		r.Listeners = append(r.Listeners, l)
	}
	return nil
}

// transparentInbound moves the listeners of a transparent proxy's inbounds
// into its inbound redirect listener.
func transparentInbound(p *proxymodel.Proxy, r *Resources) error {
	tp := p.TransparentProxy
	if tp == nil {
		return nil
	}
	var chains []*listenerv3.FilterChain
	inspectTLS := false
	ports := map[uint32]string{}
	for i := range p.Inbounds {
		in := &p.Inbounds[i]
		name := inboundListenerName(in.Address, in.Port)
		if other, dup := ports[in.Port]; dup {
			return fmt.Errorf("inbound %s:%d: port %d is also the port of inbound %s; a transparent proxy tells inbounds apart by port", in.Address, in.Port, in.Port, other)
		}
		ports[in.Port] = fmt.Sprintf("%s:%d", in.Address, in.Port)
		l := r.takeListener(name)
		if l == nil {
			return fmt.Errorf("inbound %s:%d: no listener to redirect", in.Address, in.Port)
		}
		for _, lf := range l.GetListenerFilters() {
			if lf.GetName() != wellknown.TLSInspector {
				return fmt.Errorf("inbound %s:%d: listener filter %q cannot move to the redirect listener", in.Address, in.Port, lf.GetName())
			}
			inspectTLS = true
		}
		for _, fc := range l.GetFilterChains() {
			if fc.FilterChainMatch == nil {
				fc.FilterChainMatch = &listenerv3.FilterChainMatch{}
			}
			fc.FilterChainMatch.DestinationPort = wrapperspb.UInt32(in.Port)
			chains = append(chains, fc)
		}
	}
	families := []struct {
		on         bool
		name, addr string
	}{
		{tp.IPv4(), inboundPassthroughV4, "0.0.0.0"},
		{tp.IPv6(), inboundPassthroughV6, "::"},
	}
	for i, f := range families {
		if !f.on {
			continue
		}
		l, err := redirectListener(f.name, f.addr, tp.RedirectPortInbound, corev3.TrafficDirection_INBOUND, inspectTLS)
		if err != nil {
			return err
		}
		if i == 0 || !tp.IPv4() {
			l.FilterChains = chains
		} else {
			for _, fc := range chains {
				l.FilterChains = append(l.FilterChains, proto.Clone(fc).(*listenerv3.FilterChain))
			}
		}
		if l.DefaultFilterChain, err = passthroughChain(f.name); err != nil {
			return err
		}
		r.Listeners = append(r.Listeners, l)
		c := originalDstCluster(f.name)
		c.UpstreamBindConfig = inboundPassthroughSource(f.name == inboundPassthroughV6)
		r.Clusters = append(r.Clusters, c)
	}
	return nil
}

// inboundPassthroughSource binds the inbound passthrough's upstream
// connections to 127.0.0.6 (::6, which lo does not have: freebind), the
// source the host's redirect rules let through, so that the connection to
// the original destination on this host is not redirected back to the
// proxy (as Kuma does).
func inboundPassthroughSource(v6 bool) *corev3.BindConfig {
	if v6 {
		return &corev3.BindConfig{SourceAddress: &corev3.SocketAddress{Address: "::6", PortSpecifier: &corev3.SocketAddress_PortValue{}}, Freebind: wrapperspb.Bool(true)}
	}
	return &corev3.BindConfig{SourceAddress: &corev3.SocketAddress{Address: "127.0.0.6", PortSpecifier: &corev3.SocketAddress_PortValue{}}}
}

// redirectListener is a listener on a redirect port with the original_dst
// listener filter (and the TLS inspector after it, when a chain matches
// the transport protocol).
func redirectListener(name, addr string, port uint32, dir corev3.TrafficDirection, inspectTLS bool) (*listenerv3.Listener, error) {
	od, err := anyOf(&originaldstv3.OriginalDst{})
	if err != nil {
		return nil, err
	}
	l := &listenerv3.Listener{
		Name:             name,
		Address:          socketAddress(addr, port),
		TrafficDirection: dir,
		ListenerFilters: []*listenerv3.ListenerFilter{{
			Name:       wellknown.OriginalDestination,
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: od},
		}},
	}
	if inspectTLS {
		ti, err := anyOf(&tlsinspectorv3.TlsInspector{})
		if err != nil {
			return nil, err
		}
		l.ListenerFilters = append(l.ListenerFilters, &listenerv3.ListenerFilter{
			Name:       wellknown.TLSInspector,
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: ti},
		})
	}
	return l, nil
}

// passthroughChain is a filter chain proxying connections to the
// ORIGINAL_DST cluster of the given name.
func passthroughChain(cluster string) (*listenerv3.FilterChain, error) {
	f, err := tcpProxyFilter(cluster, nil)
	if err != nil {
		return nil, err
	}
	return &listenerv3.FilterChain{Filters: []*listenerv3.Filter{f}}, nil
}

// originalDstCluster connects to each connection's original destination.
func originalDstCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
		ConnectTimeout:       durationpb.New(connectTimeout),
		LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED,
	}
}

// hostRange is the prefix range of one address (/32 or /128).
func hostRange(a netip.Addr) *corev3.CidrRange {
	return &corev3.CidrRange{AddressPrefix: a.String(), PrefixLen: wrapperspb.UInt32(uint32(a.BitLen()))}
}
