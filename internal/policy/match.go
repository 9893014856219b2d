package policy

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/mesh"
)

// spec is the part of a policy spec this package reads.
type spec struct {
	TargetRef *common.TargetRef `json:"targetRef"`
	From      []item            `json:"from"`
	To        []item            `json:"to"`
	Rules     []ruleItem        `json:"rules"`
	Default   json.RawMessage   `json:"default"`
}

type item struct {
	TargetRef common.TargetRef `json:"targetRef"`
	Default   json.RawMessage  `json:"default"`
}

type ruleItem struct {
	Matches json.RawMessage `json:"matches"`
	Default json.RawMessage `json:"default"`
}

// parsed is a policy with its spec read.
type parsed struct {
	attrs
	name string
	spec spec
}

func parse(p Policy, seq int) (parsed, error) {
	raw, err := json.Marshal(p.Spec)
	if err != nil {
		return parsed{}, fmt.Errorf("policy %q: encoding the spec: %w", p.Name, err)
	}
	var s spec
	if err := json.Unmarshal(raw, &s); err != nil {
		return parsed{}, fmt.Errorf("policy %q: reading the spec: %w", p.Name, err)
	}
	return parsed{attrs: newAttrs(p, s.TargetRef, seq), name: p.Name, spec: s}, nil
}

func (p *parsed) ref() Ref { return Ref{Name: p.name, Origin: p.origin} }

// chosen is a policy that selects the proxy being matched, with what it
// selects of it.
type chosen struct {
	*parsed
	sel selection
}

// Match decides which of policies (every policy of one kind in the proxy's
// mesh) select dp, and merges their sections per inbound (from[], rules[])
// and for the proxy (to[], default). See the package documentation for the
// rules. It fails only when a spec cannot be encoded or merged. To match
// the same policies against many proxies, use a Matcher.
func Match(dp Dataplane, policies []Policy) (*Matched, error) {
	return newMatcher(policies, false).Match(dp)
}

// Match decides which of the matcher's policies select dp and merges
// their sections, as the function Match does with the same policies.
// The result's slices (and the rules, entries and subsets in them) may be
// shared with the results of other proxies: callers may replace the
// fields of the Matched and of its Inbounds items, but must not modify
// what they point to.
func (mt *Matcher) Match(dp Dataplane) (*Matched, error) {
	if mt.err != nil {
		return nil, mt.err
	}
	ins := inbounds(dp)
	var selected []chosen
	for i := range mt.policies {
		p := &mt.policies[i]
		sel, note := selectProxy(dp, p.spec.TargetRef)
		if note != "" {
			continue // the same for every proxy: in mt.notes
		}
		if !sel.proxy && len(sel.inbounds) == 0 {
			continue
		}
		selected = append(selected, chosen{parsed: p, sel: sel})
	}
	if mt.memo == nil {
		return merge(ins, slices.Clone(mt.notes), selected)
	}
	key := signature(ins, selected)
	mt.mu.Lock()
	t, ok := mt.memo[string(key)]
	mt.mu.Unlock()
	if !ok {
		var err error
		if t, err = merge(ins, slices.Clone(mt.notes), selected); err != nil {
			return nil, err
		}
		clipShared(t)
		mt.mu.Lock()
		if prev, ok := mt.memo[string(key)]; ok {
			t = prev // merged concurrently: keep one
		} else {
			mt.memo[string(key)] = t
		}
		mt.mu.Unlock()
	}
	return t.instance(ins), nil
}

// merge sorts the selected policies and merges their sections for the
// proxy's inbounds ins; notes are those of the selection.
func merge(ins []Inbound, notes []string, selected []chosen) (*Matched, error) {
	m := &Matched{Inbounds: ins, To: Rules{}, Notes: notes}
	slices.SortFunc(selected, func(a, b chosen) int { return comparePolicies(a.attrs, b.attrs) })
	for _, p := range selected {
		m.Policies = append(m.Policies, p.ref())
	}
	for i := range m.Inbounds {
		if err := m.fillInbound(&m.Inbounds[i], selected); err != nil {
			return nil, err
		}
	}
	var to []section
	var single []section
	for _, p := range selected {
		to = append(to, m.sections(p.parsed, "to", p.spec.To)...)
		if len(p.spec.Default) > 0 && string(p.spec.Default) != "null" {
			single = append(single, section{policy: p.attrs, name: p.name, conf: p.spec.Default})
		}
	}
	var err error
	if m.To, err = m.buildRules(to); err != nil {
		return nil, err
	}
	if len(single) > 0 {
		r, err := mergeSections(Subset{}, single)
		if err != nil {
			return nil, err
		}
		m.Single = &r
	}
	return m, nil
}

// inbounds lists the proxy's inbounds that are not ignored.
func inbounds(dp Dataplane) []Inbound {
	out := []Inbound{}
	n := networking(dp)
	if n == nil {
		return out
	}
	for i, in := range n.Inbound {
		if in.EffectiveState() == mesh.InboundIgnored {
			continue
		}
		addr := n.Address
		if in.Address != "" {
			addr = in.Address
		}
		out = append(out, Inbound{
			Index: i, Name: in.Name, Address: addr, Port: in.Port, Tags: in.Tags,
			Policies: []Ref{}, From: Rules{}, Rules: []Entry{},
		})
	}
	return out
}

// fillInbound merges the sections of the policies that select in.
func (m *Matched) fillInbound(in *Inbound, selected []chosen) error {
	var from []section
	for _, p := range selected {
		if !slices.Contains(p.sel.inbounds, in.Index) {
			continue
		}
		in.Policies = append(in.Policies, p.ref())
		from = append(from, m.sections(p.parsed, "from", p.spec.From)...)
		for j, r := range p.spec.Rules {
			in.Rules = append(in.Rules, Entry{Policy: p.name, Index: j, Matches: r.Matches, Conf: r.Default})
		}
	}
	rules, err := m.buildRules(from)
	if err != nil {
		return fmt.Errorf("inbound %s:%d: %w", in.Address, in.Port, err)
	}
	in.From = rules
	return nil
}

// sections returns a policy's from[] or to[] items as sections, noting
// those whose targetRef cannot be expressed as tags.
func (m *Matched) sections(p *parsed, field string, items []item) []section {
	var out []section
	for j, it := range items {
		if _, ok := subsetOf(it.TargetRef); !ok {
			why := fmt.Sprintf("targetRef kind %s is not supported here yet", it.TargetRef.Kind)
			if it.TargetRef.Kind == common.MeshService {
				why = "MeshService targetRefs by labels need MeshService resources, which are not supported yet"
			}
			note := fmt.Sprintf("policy %q: %s[%d] is skipped: %s", p.name, field, j, why)
			if !slices.Contains(m.Notes, note) {
				m.Notes = append(m.Notes, note)
			}
			continue
		}
		ref := it.TargetRef
		out = append(out, section{policy: p.attrs, name: p.name, ref: &ref, index: j, conf: it.Default})
	}
	return out
}
