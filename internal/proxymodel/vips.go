package proxymodel

import (
	"slices"
	"sort"

	"github.com/trellis-mesh/trellis/api/mesh"
)

// SnapshotServices returns every kuma.io/service of the snapshot's
// Dataplanes' inbounds (ignored inbounds excepted), sorted: the services
// that get a virtual IP.
func SnapshotServices(snap *MeshSnapshot) []string {
	seen := map[string]bool{}
	for _, dp := range snap.Dataplanes {
		if dp.Spec == nil || dp.Spec.Networking == nil {
			continue
		}
		for i := range dp.Spec.Networking.Inbound {
			in := &dp.Spec.Networking.Inbound[i]
			if svc := in.Tags[mesh.ServiceTag]; svc != "" && in.EffectiveState() != mesh.InboundIgnored {
				seen[svc] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for svc := range seen {
		out = append(out, svc)
	}
	sort.Strings(out)
	return out
}

// VIPsFor returns the VIPs of a transparent proxy: the table's, limited to
// tp.ReachableServices when that is not empty, sorted by service, each
// with only the addresses of the IP families the proxy captures (an IPv4
// proxy gets no IPv6 address, so its DNS gives no AAAA answer). It
// returns nil when tp is nil.
func VIPsFor(table map[string]VIP, tp *TransparentProxy) []VIP {
	if tp == nil || len(table) == 0 {
		return nil
	}
	out := make([]VIP, 0, len(table))
	for svc, v := range table {
		if len(tp.ReachableServices) > 0 && !slices.Contains(tp.ReachableServices, svc) {
			continue
		}
		if !tp.IPv4() {
			v.IPv4 = ""
		}
		if !tp.IPv6() {
			v.IPv6 = ""
		}
		if v.IPv4 == "" && v.IPv6 == "" {
			continue
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b VIP) int {
		switch {
		case a.Service < b.Service:
			return -1
		case a.Service > b.Service:
			return 1
		}
		return 0
	})
	return out
}

// fillVIPs gives a transparent proxy its VIPs (Build calls it once
// p.TransparentProxy is set, before the transparent outbounds are made
// from them).
func (ix *Index) fillVIPs(p *Proxy) {
	p.VIPs = VIPsFor(ix.snap.VIPs, p.TransparentProxy)
}

// hashVIPInputs writes what a transparent proxy's VIPs and the outbounds
// made of them depend on beyond its Dataplane: every service of the VIP
// table with its VIP, its endpoints and protocol, and its inbound ports
// (Index.Fingerprint calls it for Dataplanes with transparentProxying).
// The hash is computed once per index.
func (ix *Index) hashVIPInputs(h *Hasher) {
	ix.in.vipsOnce.Do(func() {
		svcs := make([]string, 0, len(ix.snap.VIPs))
		for svc := range ix.snap.VIPs {
			svcs = append(svcs, svc)
		}
		sort.Strings(svcs)
		var sub Hasher
		sub.Uint(uint64(len(svcs)))
		for _, svc := range svcs {
			v := ix.snap.VIPs[svc]
			sub.String(svc)
			sub.String(v.Name)
			sub.String(v.IPv4)
			sub.String(v.IPv6)
			sub.Fingerprint(ix.serviceFingerprint(svc))
			ports := ix.servicePorts(svc)
			sub.Uint(uint64(len(ports)))
			for _, port := range ports {
				sub.Uint(uint64(port))
			}
		}
		ix.in.vips = sub.Sum()
	})
	h.Raw('V')
	h.Fingerprint(ix.in.vips)
}
