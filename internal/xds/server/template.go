package server

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// Inbound templates. Proxies of one service usually differ, in their
// inbound part, by their address only (it names the inbound listeners,
// binds them, prefixes their stats). A change that touches every proxy
// of a mesh — a MeshTrafficPermission edit — would build and encode
// every proxy's inbound part again, although they are all one part with
// another address. So the inbound part is built once per service shape
// with a placeholder address of the same length as the proxy's, and
// each proxy's part is the template's encodings with the placeholder
// replaced by its address: an encoding's length prefixes stay valid
// because the lengths are equal, so the result is byte for byte what
// building with the proxy's address gives (the builder uses the address
// as text only).
//
// A template is trusted only after a check: the first proxy of a shape
// is built as before, and the template, built with two different
// placeholders, must turn into exactly those encodings with that proxy's
// address in place of either placeholder; a builder that treated the
// address as more than text (parsed it, sorted by it), used the name, or
// placeholder text found elsewhere fails the check, and that shape is
// built proxy by proxy. Only IPv4 addresses are templated, with IPv4
// placeholders, so the builder sees an address of the same kind.

// template is one inbound part built with a placeholder address.
type template struct {
	placeholder string
	out         *output
}

// templates holds a mesh's inbound templates by the fingerprint of the
// placeholder model; a nil entry marks a shape that failed the check.
type templates struct {
	mu sync.Mutex
	m  map[fingerprint]*template
	// used are the fingerprints used since the last sweep.
	used map[fingerprint]bool
}

func newTemplates() *templates {
	return &templates{m: map[fingerprint]*template{}, used: map[fingerprint]bool{}}
}

// sweep drops the templates not used since the previous sweep, unless
// none was (a recompute that changed no inbound part keeps them all).
func (t *templates) sweep() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.used) == 0 {
		return
	}
	for fp := range t.m {
		if !t.used[fp] {
			delete(t.m, fp)
		}
	}
	t.used = map[fingerprint]bool{}
}

// inboundPart returns the inbound part of in (the inbound model of proxy
// ps, see sidecarParts): the proxy's last one when the model did not
// change, else made from the template of its shape when it has one, else
// built.
func (ms *meshState) inboundPart(tpls *templates, ps *proxyState, in *proxymodel.Proxy) (*output, error) {
	addr, ok := templatable(in)
	if !ok {
		fp, ok := ms.fingerprintOf(in)
		if !ok {
			return buildInbound(in)
		}
		if ps.inbound != nil && ps.inboundFP == fp {
			return ps.inbound, nil
		}
		o, err := buildInbound(in)
		if err != nil {
			return nil, err
		}
		ps.inbound, ps.inboundFP = o, fp
		return o, nil
	}
	// The shape: the model with a placeholder address and no name (the
	// check below fails if the builder used the name).
	p1 := withAddress(in, ipv4Placeholder(len(addr), '2'), "")
	shape, ok := ms.fingerprintOf(p1)
	if !ok {
		return buildInbound(in)
	}
	var h proxymodel.Hasher
	h.Fingerprint(shape)
	h.String(addr)
	fp := h.Sum()
	if ps.inbound != nil && ps.inboundFP == fp {
		tpls.mu.Lock()
		tpls.used[shape] = true
		tpls.mu.Unlock()
		return ps.inbound, nil
	}
	tpls.mu.Lock()
	t, known := tpls.m[shape]
	tpls.used[shape] = true
	tpls.mu.Unlock()
	var o *output
	switch {
	case !known:
		var err error
		if t, o, err = makeTemplate(p1, in, addr); err != nil {
			return nil, err
		}
		tpls.mu.Lock()
		if prev, made := tpls.m[shape]; !made || prev != nil {
			tpls.m[shape] = t // made concurrently for another proxy: a failed check wins
		}
		tpls.mu.Unlock()
	case t != nil:
		o = t.instantiate(addr)
	default:
		var err error
		if o, err = buildInbound(in); err != nil {
			return nil, err
		}
	}
	ps.inbound, ps.inboundFP = o, fp
	return o, nil
}

// buildInbound builds an inbound part without a template. Its secrets
// come from the proxy's mTLS model alone, which the outbound part has
// too: they are encoded there, once per service rather than per proxy.
func buildInbound(in *proxymodel.Proxy) (*output, error) {
	res, err := build.SidecarPart(in, build.PartInbound)
	if err != nil {
		return nil, err
	}
	res.Secrets = nil
	return newOutput(res)
}

// templatable reports the address to template a proxy's inbound part
// by: its IPv4 networking.address, when every inbound listens on it.
func templatable(in *proxymodel.Proxy) (string, bool) {
	a, err := netip.ParseAddr(in.Address)
	if err != nil || !a.Is4() || a.String() != in.Address {
		return "", false
	}
	for _, ib := range in.Inbounds {
		if ib.Address != in.Address {
			return "", false
		}
	}
	return in.Address, true
}

// withAddress returns a copy of in with the proxy's and its inbounds'
// address, and the proxy's name, replaced.
func withAddress(in *proxymodel.Proxy, addr, name string) *proxymodel.Proxy {
	p := *in
	p.Address, p.Name = addr, name
	p.Inbounds = slices.Clone(in.Inbounds)
	for i := range p.Inbounds {
		p.Inbounds[i].Address = addr
	}
	// What the policies say about each inbound names its address too.
	if in.Policies != nil {
		p.Policies = make(map[string]*proxymodel.Matched, len(in.Policies))
		for kind, m := range in.Policies {
			if m == nil || len(m.Inbounds) == 0 {
				p.Policies[kind] = m
				continue
			}
			c := *m
			c.Inbounds = slices.Clone(m.Inbounds)
			for i := range c.Inbounds {
				if c.Inbounds[i].Address == in.Address {
					c.Inbounds[i].Address = addr
				}
			}
			p.Policies[kind] = &c
		}
	}
	return &p
}

// ipv4Placeholder returns an IPv4 address of n characters (7 to 15)
// written with digit d only, such as "222.222.22.2".
func ipv4Placeholder(n int, d byte) string {
	digits := n - 3 // four octets of 1 to 3 digits
	var b strings.Builder
	for i := range 4 {
		k := min(3, digits-(3-i)) // leave at least a digit to each octet after this
		if i > 0 {
			b.WriteByte('.')
		}
		for range k {
			b.WriteByte(d)
		}
		digits -= k
	}
	return b.String()
}

// makeTemplate builds the inbound part of in (the first proxy of a
// shape) and returns it, with the shape's template: p1 built, when p1 and
// the same model with another placeholder both give exactly in's
// resources once addr replaces their placeholder; else nil.
func makeTemplate(p1, in *proxymodel.Proxy, addr string) (*template, *output, error) {
	direct, err := buildInbound(in)
	if err != nil {
		return nil, nil, err
	}
	t1, err1 := newTemplate(p1)
	t2, err2 := newTemplate(withAddress(in, ipv4Placeholder(len(addr), '1'), in.Name))
	if err1 != nil || err2 != nil || !sameOutput(t1.instantiate(addr), direct) || !sameOutput(t2.instantiate(addr), direct) {
		return nil, direct, nil
	}
	return t1, direct, nil
}

// sameOutput reports whether two outputs hold the same resources.
func sameOutput(a, b *output) bool {
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if a[i][j].name != b[i][j].name || a[i][j].hash != b[i][j].hash {
				return false
			}
		}
	}
	return true
}

func newTemplate(p *proxymodel.Proxy) (*template, error) {
	o, err := buildInbound(p)
	if err != nil {
		return nil, err
	}
	return &template{placeholder: p.Address, out: o}, nil
}

// instantiate returns the template's resources with addr in place of the
// placeholder.
func (t *template) instantiate(addr string) *output {
	ph, a := []byte(t.placeholder), []byte(addr)
	var out output
	for i, items := range t.out {
		list := make([]item, 0, len(items))
		for _, it := range items {
			b := it.raw()
			if bytes.Contains(b, ph) {
				b = bytes.ReplaceAll(b, ph, a)
			}
			list = append(list, newItem(strings.ReplaceAll(it.name, t.placeholder, addr), b))
		}
		sortItems(list)
		out[i] = list
	}
	return &out
}
