package server

import (
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// Building a proxy's resources is split in two parts, built and hashed
// separately and merged: its inbounds (unique to the proxy: they carry
// its address) and its outbounds (the same for every proxy of a service
// that calls the same services). The outbound part is shared between
// proxies through an outputMemo; the inbound part is kept per proxy and
// reused while its fingerprint does not change. The builder makes the
// resources of an inbound from the inbound and the proxy's mTLS only, and
// those of an outbound from the outbound and the proxy's mTLS only, and
// the secrets from the mTLS only (so the inbound part leaves them to the
// outbound part), so the merged parts are exactly what build.Sidecar
// makes of the whole model (TestSharedOutputIsTheWholeBuild checks it).

// outputMemo holds the outbound parts built for one mesh, by fingerprint.
// Parts not used by a full recompute of the mesh are dropped after it; a
// proxy skipped because its inputs did not change uses the part its last
// output was built with (so a recompute that changes nothing, such as
// one for insight updates, keeps every part for the next change).
type outputMemo struct {
	mu    sync.Mutex
	parts map[fingerprint]*output
	used  map[fingerprint]bool
	// of holds the part each proxy's last output was built with; seen the
	// proxies that used one since the previous sweep.
	of   map[*proxyState]fingerprint
	seen map[*proxyState]bool
	// tpls are the mesh's inbound templates (template.go).
	tpls *templates
}

func newOutputMemo() *outputMemo {
	return &outputMemo{
		parts: map[fingerprint]*output{}, used: map[fingerprint]bool{},
		of: map[*proxyState]fingerprint{}, seen: map[*proxyState]bool{},
		tpls: newTemplates(),
	}
}

// get returns the part with fingerprint fp for proxy ps, building it when
// missing. Concurrent callers may build one part twice; either result is
// kept.
func (m *outputMemo) get(ps *proxyState, fp fingerprint, make func() (*output, error)) (*output, error) {
	m.mu.Lock()
	o := m.parts[fp]
	m.used[fp] = true
	m.of[ps], m.seen[ps] = fp, true
	m.mu.Unlock()
	if o != nil {
		return o, nil
	}
	o, err := make()
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.parts[fp] = o
	m.mu.Unlock()
	return o, nil
}

// keep marks the part of the proxy's last output used.
func (m *outputMemo) keep(ps *proxyState) {
	m.mu.Lock()
	if fp, ok := m.of[ps]; ok {
		m.used[fp], m.seen[ps] = true, true
	}
	m.mu.Unlock()
}

// sweep drops the parts not used since the previous sweep, and forgets
// the proxies that used none (gone, or built without sharing).
func (m *outputMemo) sweep() {
	m.tpls.sweep()
	m.mu.Lock()
	defer m.mu.Unlock()
	for fp := range m.parts {
		if !m.used[fp] {
			delete(m.parts, fp)
		}
	}
	for ps := range m.of {
		if !m.seen[ps] {
			delete(m.of, ps)
		}
	}
	m.used = map[fingerprint]bool{}
	m.seen = map[*proxyState]bool{}
}

// sidecarOutput returns the resources of a sidecar proxy, reusing its
// previous inbound part and the mesh's outbound parts where the model did
// not change, and when one of its certificates is due to be reissued.
func sidecarOutput(ms *meshState, memo *outputMemo, ps *proxyState) (*output, time.Time, error) {
	// What the model is built from unchanged: the last output stands.
	inputs, inputsOK := ms.inputsOf(ps.info().key.Name, ps.info().dnsPort)
	if inputsOK && ps.last != nil && ps.lastInputs == inputs {
		memo.keep(ps)
		return ps.last, ps.lastRenew, nil
	}
	o, renew, err := sidecarParts(ms, memo, ps)
	if err != nil {
		return nil, time.Time{}, err
	}
	if inputsOK {
		ps.last, ps.lastInputs, ps.lastRenew = o, inputs, renew
	} else {
		ps.last = nil
	}
	return o, renew, nil
}

// inputsOf fingerprints what a proxy's model is built from: the index's
// inputs, its mTLS model and the DNS port its node announces.
func (ms *meshState) inputsOf(name string, dnsPort uint32) (fingerprint, bool) {
	f, ok := ms.ix.Fingerprint(name)
	if !ok {
		return fingerprint{}, false
	}
	dp, _ := ms.ix.Dataplane(name)
	if dp.Spec == nil {
		return fingerprint{}, false
	}
	t, err := ms.mtlsFor(dp.Spec.ServiceNames())
	if err != nil {
		return fingerprint{}, false
	}
	var h proxymodel.Hasher
	h.Fingerprint(f)
	h.Fingerprint(t.fp)
	h.Uint(uint64(dnsPort))
	return h.Sum(), true
}

// sidecarParts builds a proxy's resources from its inbound and outbound
// parts.
func sidecarParts(ms *meshState, memo *outputMemo, ps *proxyState) (*output, time.Time, error) {
	p, renew, err := ms.model(ps.info().key.Name)
	if err != nil {
		return nil, time.Time{}, err
	}
	p.DNSPort = ps.info().dnsPort // from its node metadata (node.go)
	in, out := *p, *p
	in.Outbounds, in.Policies = nil, policiesPart(p.Policies, true)
	in.VIPs, in.DNSPort = nil, 0 // read by outbound hooks only (DNS, transparent outbounds)
	out.Inbounds, out.Name, out.Policies = nil, "", policiesPart(p.Policies, false)
	out.Address, out.AdminPort = "", 0 // inbound-only (the MeshMetric listener)
	outFP, okOut := ms.fingerprintOf(&out)
	if okOut {
		inPart, err := ms.inboundPart(memo.tpls, ps, &in) // template.go
		if err != nil {
			return nil, time.Time{}, err
		}
		outPart, err := memo.get(ps, outFP, func() (*output, error) { return buildPart(&out, build.PartOutbound) })
		if err != nil {
			return nil, time.Time{}, err
		}
		if o, ok := merge(inPart, outPart); ok {
			return o, renew, nil
		}
	}
	o, err := buildPart(p, build.PartAll)
	return o, renew, err
}

// policiesPart keeps, of what the policies say about a proxy, the part
// the builder's inbound hooks read (per-inbound matches and the single
// default) or the part its outbound hooks read (to[] rules and the single
// default), so proxies that differ only in the other part share this one.
func policiesPart(all map[string]*proxymodel.Matched, inbound bool) map[string]*proxymodel.Matched {
	if all == nil {
		return nil
	}
	out := make(map[string]*proxymodel.Matched, len(all))
	for kind, m := range all {
		if m == nil {
			continue
		}
		part := &proxymodel.Matched{Single: m.Single}
		if inbound {
			part.Inbounds = m.Inbounds
		} else {
			part.To = m.To
		}
		out[kind] = part
	}
	return out
}

// buildPart builds one part of a proxy's resources as an output.
func buildPart(p *proxymodel.Proxy, part build.Part) (*output, error) {
	res, err := build.SidecarPart(p, part)
	if err != nil {
		return nil, err
	}
	return newOutput(res)
}
