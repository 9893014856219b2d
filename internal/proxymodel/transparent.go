package proxymodel

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/trellis-mesh/trellis/api/mesh"
)

// Defaults of a Dataplane's networking.transparentProxying, as in Kuma.
const (
	// DefaultRedirectPortInbound is where the host redirects inbound TCP.
	DefaultRedirectPortInbound = 15006
	// DefaultRedirectPortOutbound is where the host redirects outbound TCP.
	DefaultRedirectPortOutbound = 15001
	// DefaultVIPPort is the port every service's virtual IP answers on,
	// besides the ports of the service's inbounds.
	DefaultVIPPort = 80
)

// transparentProxyOf returns the model of a Dataplane's
// networking.transparentProxying (nil when it has none), with the mesh's
// passthrough setting.
func transparentProxyOf(tp *mesh.TransparentProxying, m *mesh.Mesh) *TransparentProxy {
	if tp == nil {
		return nil
	}
	out := &TransparentProxy{
		RedirectPortInbound:  DefaultRedirectPortInbound,
		RedirectPortOutbound: DefaultRedirectPortOutbound,
		IPFamilyMode:         tp.IPFamilyMode,
		ReachableServices:    slices.Clone(tp.ReachableServices),
		DirectAccessServices: slices.Clone(tp.DirectAccessServices),
		Passthrough:          m.PassthroughEnabled(),
	}
	if out.IPFamilyMode == mesh.IPFamilyUnspecified {
		out.IPFamilyMode = ""
	}
	if tp.RedirectPortInbound != nil && *tp.RedirectPortInbound != 0 {
		out.RedirectPortInbound = *tp.RedirectPortInbound
	}
	if tp.RedirectPortOutbound != nil && *tp.RedirectPortOutbound != 0 {
		out.RedirectPortOutbound = *tp.RedirectPortOutbound
	}
	return out
}

// IPv4 reports whether the proxy captures IPv4 traffic (DualStack or
// IPv4).
func (tp *TransparentProxy) IPv4() bool { return tp.IPFamilyMode != mesh.IPFamilyIPv6 }

// IPv6 reports whether the proxy captures IPv6 traffic (DualStack or
// IPv6).
func (tp *TransparentProxy) IPv6() bool { return tp.IPFamilyMode != mesh.IPFamilyIPv4 }

// DirectAccess reports whether the application may call the instances of
// svc by their own address:port.
func (tp *TransparentProxy) DirectAccess(svc string) bool {
	return slices.Contains(tp.DirectAccessServices, "*") || slices.Contains(tp.DirectAccessServices, svc)
}

// tproxyMemo holds what transparent outbounds need of the whole mesh,
// computed once per Index.
type tproxyMemo struct {
	once sync.Once
	// ports are the distinct inbound ports of each service, sorted.
	ports map[string][]uint32
}

// servicePorts returns the distinct ports of a service's inbounds (every
// inbound of the mesh, ready or not, so the outbounds of a transparent
// proxy do not change with readiness), sorted.
func (ix *Index) servicePorts(svc string) []uint32 {
	ix.tproxy.once.Do(func() {
		ports := map[string][]uint32{}
		for _, dp := range ix.snap.Dataplanes {
			if dp.Spec == nil || dp.Spec.Networking == nil {
				continue
			}
			for i := range dp.Spec.Networking.Inbound {
				in := &dp.Spec.Networking.Inbound[i]
				s := in.Tags[mesh.ServiceTag]
				if s == "" || in.Port == 0 || slices.Contains(ports[s], in.Port) {
					continue
				}
				ports[s] = append(ports[s], in.Port)
			}
		}
		for _, p := range ports {
			slices.Sort(p)
		}
		ix.tproxy.ports = ports
	})
	return ix.tproxy.ports[svc]
}

// AddTransparentOutbounds adds a transparent proxy's outbounds: for each
// of its VIPs (p.VIPs, already limited to the services it may reach), the
// VIP (IPv4 and, in dual stack, IPv6, as the proxy's IP family mode
// allows) on port 80 and on each distinct port of the service's inbounds,
// to that service. An address:port the Dataplane lists as an outbound
// keeps the Dataplane's outbound, and so does one added before: calling
// it again adds nothing. Build calls it after p.VIPs is filled and before
// the appliers.
func (ix *Index) AddTransparentOutbounds(p *Proxy) {
	tp := p.TransparentProxy
	if tp == nil {
		return
	}
	taken := map[netip.AddrPort]bool{}
	for _, o := range p.Outbounds {
		if a, err := netip.ParseAddr(o.Address); err == nil {
			taken[netip.AddrPortFrom(a, uint16(o.Port))] = true
		}
	}
	for _, vip := range p.VIPs {
		var addrs []netip.Addr
		if a, err := netip.ParseAddr(vip.IPv4); err == nil && tp.IPv4() {
			addrs = append(addrs, a.Unmap())
		}
		if a, err := netip.ParseAddr(vip.IPv6); err == nil && tp.IPv6() {
			addrs = append(addrs, a)
		}
		if len(addrs) == 0 {
			continue
		}
		ports := []uint32{DefaultVIPPort}
		for _, port := range ix.servicePorts(vip.Service) {
			if port != DefaultVIPPort {
				ports = append(ports, port)
			}
		}
		slices.Sort(ports)
		proto := ix.Protocol(vip.Service)
		eps := ix.EndpointsFor(p.Zone, vip.Service)
		for _, a := range addrs {
			for _, port := range ports {
				if port > 0xffff || taken[netip.AddrPortFrom(a, uint16(port))] {
					continue
				}
				p.Outbounds = append(p.Outbounds, Outbound{
					Address: a.String(), Port: port, Service: vip.Service, Protocol: proto, Endpoints: eps,
				})
			}
		}
	}
}
