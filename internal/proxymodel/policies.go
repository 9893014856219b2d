package proxymodel

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/trellis-mesh/trellis/internal/policy"
)

// PolicyItem is one policy resource of the mesh, as package policy and the
// policy kinds' packages read it.
type PolicyItem = policy.Policy

// Applier fills in what one policy kind decides for a proxy, such as the
// Permissions of its inbounds (package policy/meshtrafficpermission).
// Index.Build runs the appliers given to NewIndex, in order, once the
// proxy's inbounds and outbounds are built; they read the kind's policies
// from MeshSnapshot.Policies. Appliers must be pure and safe for
// concurrent use: proxies of one index may be built concurrently. What an
// applier decides may depend only on the snapshot's Mesh, MeshSpec and
// Policies and on the proxy it is given (dp and p): Index.Fingerprint
// hashes those, and the control plane skips proxies whose fingerprint did
// not change.
type Applier interface {
	Apply(snap *MeshSnapshot, dp NamedDataplane, p *Proxy) error
}

// apply runs the index's appliers on the model of the named proxy.
func (ix *Index) apply(name string, p *Proxy) (*Proxy, error) {
	dp := ix.named[name]
	for _, a := range ix.appliers {
		if err := a.Apply(ix.snap, dp, p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Matched is what the policies of one kind say about a proxy: package
// policy's matching and merging result (selection, per-inbound from[] and
// rules[], to[] rules, the single default).
type Matched = policy.Matched

// MatchApplier records, for one targetRef policy kind, what the mesh's
// policies of that kind say about the proxy (policy.Match) in
// Proxy.Policies[Kind]. The xDS builder's policy plugins read it there
// (Proxy.OutboundRule, Proxy.InboundMatch). The kinds are listed where
// the control plane builds its appliers (internal/xds/server/policies.go).
type MatchApplier struct {
	Kind string
}

// Apply implements Applier.
func (a MatchApplier) Apply(snap *MeshSnapshot, dp NamedDataplane, p *Proxy) error {
	m, err := snap.Match(a.Kind, dp)
	if err != nil {
		return fmt.Errorf("dataplane %q: %s: %w", dp.Name, a.Kind, err)
	}
	if p.Policies == nil {
		p.Policies = map[string]*Matched{}
	}
	p.Policies[a.Kind] = m
	return nil
}

// OutboundRule returns the merged to[] conf of a policy kind for traffic
// to a service, or nil when no policy of the kind has one for it.
func (p *Proxy) OutboundRule(kind, service string) *policy.Rule {
	m := p.Policies[kind]
	if m == nil {
		return nil
	}
	return m.Outbound(service)
}

// InboundMatch returns what the policies of a kind say about one of the
// proxy's inbounds (its from[] rules and rules[] entries), or nil when
// the kind was not matched.
func (p *Proxy) InboundMatch(kind string, in *Inbound) *policy.Inbound {
	m := p.Policies[kind]
	if m == nil {
		return nil
	}
	for i := range m.Inbounds {
		if m.Inbounds[i].Address == in.Address && m.Inbounds[i].Port == in.Port {
			return &m.Inbounds[i]
		}
	}
	return nil
}

// InboundRule returns the conf of a kind's policies for every client of
// an inbound: the from[] rule for the whole mesh (targetRef Mesh), or nil
// when none has one.
func (p *Proxy) InboundRule(kind string, in *Inbound) *policy.Rule {
	im := p.InboundMatch(kind, in)
	if im == nil {
		return nil
	}
	return im.From.Compute(map[string]string{})
}

// Match returns what the snapshot's policies of a kind say about dp: the
// result of policy.Match on Policies[kind], from a policy.Matcher made
// once per snapshot and kind (so specs are read once, and proxies selected
// by the same policies share their merged rules; treat the result's rules
// as read-only). It is safe for concurrent use. The snapshot's policies
// must not change once matched; a copy of the snapshot given other
// Policies gets matchers of its own.
func (s *MeshSnapshot) Match(kind string, dp NamedDataplane) (*Matched, error) {
	return s.matcher(kind).Match(policy.Dataplane{Name: dp.Name, Labels: dp.Labels, Spec: dp.Spec})
}

// Memo returns the value computed for key in this snapshot, calling
// compute on first use (errors are not kept; concurrent first uses may
// both compute, and one result is kept). Appliers use it for what they
// derive from the rules a Matcher shares between proxies, keyed by those
// rules' addresses (which the key keeps alive): such keys are only equal
// for the same rules. Values are shared: treat them as read-only.
func (s *MeshSnapshot) Memo(key any, compute func() (any, error)) (any, error) {
	set := s.set()
	set.mu.Lock()
	v, ok := set.memo[key]
	set.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := compute()
	if err != nil {
		return nil, err
	}
	set.mu.Lock()
	if prev, ok := set.memo[key]; ok {
		v = prev
	} else {
		set.memo[key] = v
	}
	set.mu.Unlock()
	return v, nil
}

// matcherSet holds a snapshot's matchers by kind, each with the policy
// list it was made from, and its Memo values.
type matcherSet struct {
	mu     sync.Mutex
	byKind map[string]kindMatcher
	memo   map[any]any
}

type kindMatcher struct {
	// items and n identify the policy list (Policies[kind]) the matcher
	// reads.
	items *PolicyItem
	n     int
	m     *policy.Matcher
}

// matcherSetsMu guards the creation of MeshSnapshot.matchers.
var matcherSetsMu sync.Mutex

// matcher returns the snapshot's matcher of a kind, made on first use or
// when Policies[kind] is no longer the list it was made from (a copy of
// the snapshot shares the set).
func (s *MeshSnapshot) matcher(kind string) *policy.Matcher {
	set := s.set()
	items := s.Policies[kind]
	set.mu.Lock()
	defer set.mu.Unlock()
	km, ok := set.byKind[kind]
	if !ok || km.items != unsafe.SliceData(items) || km.n != len(items) {
		km = kindMatcher{items: unsafe.SliceData(items), n: len(items), m: policy.NewMatcher(items)}
		set.byKind[kind] = km
	}
	return km.m
}

// set returns the snapshot's matcher set, made on first use.
func (s *MeshSnapshot) set() *matcherSet {
	matcherSetsMu.Lock()
	defer matcherSetsMu.Unlock()
	if s.matchers == nil {
		s.matchers = &matcherSet{byKind: map[string]kindMatcher{}, memo: map[any]any{}}
	}
	return s.matchers
}
