package policy

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
)

// Matcher matches the policies of one kind against many proxies. It reads
// every spec once, and merges the sections once per selection: proxies
// whose inbounds are selected by the same policies (all the proxies of a
// service, usually) get the same rules, so the merge of the first is
// reused for the others. A Matcher is safe for concurrent use; it holds
// the results it merged until it is dropped, so make one per set of
// policies (a mesh snapshot) rather than one for the process.
type Matcher struct {
	// policies are the parsed policies in input order (seq is the index).
	policies []parsed
	// notes are the selection notes, the same for every proxy (a
	// top-level targetRef kind that cannot be matched yet).
	notes []string
	// err is the first spec that could not be read; Match returns it.
	err error

	mu sync.Mutex
	// memo holds merged results by signature; nil for a one-off Match.
	memo map[string]*Matched
}

// NewMatcher reads the specs of policies (every policy of one kind in a
// mesh) for matching them against proxies. A spec that cannot be read
// makes every Match fail with its error, as the function Match does.
func NewMatcher(policies []Policy) *Matcher {
	return newMatcher(policies, true)
}

func newMatcher(policies []Policy, memo bool) *Matcher {
	mt := &Matcher{policies: make([]parsed, 0, len(policies))}
	if memo {
		mt.memo = map[string]*Matched{}
	}
	for seq, p := range policies {
		pp, err := parse(p, seq)
		if err != nil {
			return &Matcher{err: err}
		}
		// The note of a kind that cannot be matched does not depend on the
		// proxy.
		if _, note := selectProxy(Dataplane{}, pp.spec.TargetRef); note != "" {
			mt.notes = append(mt.notes, fmt.Sprintf("policy %q is skipped: %s", p.Name, note))
		}
		mt.policies = append(mt.policies, pp)
	}
	return mt
}

// signature encodes what the merged result of a proxy depends on besides
// the policies: which policies select the proxy and, for each of its
// inbounds, which select that inbound. Equal signatures give results that
// differ only in the inbounds' own fields (index, name, address, port,
// tags).
func signature(ins []Inbound, selected []chosen) []byte {
	key := make([]byte, 0, 8+2*len(selected)*(1+len(ins)))
	key = binary.AppendUvarint(key, uint64(len(selected)))
	for _, p := range selected {
		key = binary.AppendUvarint(key, uint64(p.seq))
	}
	key = binary.AppendUvarint(key, uint64(len(ins)))
	for _, in := range ins {
		n := 0
		for _, p := range selected {
			if slices.Contains(p.sel.inbounds, in.Index) {
				n++
			}
		}
		key = binary.AppendUvarint(key, uint64(n))
		for _, p := range selected {
			if slices.Contains(p.sel.inbounds, in.Index) {
				key = binary.AppendUvarint(key, uint64(p.seq))
			}
		}
	}
	return key
}

// clipShared clips the slices of a memoized result, so that a caller
// appending to its copy's slices allocates rather than writes into the
// memo.
func clipShared(m *Matched) {
	m.Policies = slices.Clip(m.Policies)
	m.To = slices.Clip(m.To)
	m.Notes = slices.Clip(m.Notes)
	for i := range m.Inbounds {
		in := &m.Inbounds[i]
		in.Policies = slices.Clip(in.Policies)
		in.From = slices.Clip(in.From)
		in.Rules = slices.Clip(in.Rules)
	}
}

// instance returns a copy of a memoized result for a proxy with inbounds
// ins (of the same signature): its own Matched and Inbounds, the rest
// shared.
func (m *Matched) instance(ins []Inbound) *Matched {
	out := *m
	out.Inbounds = make([]Inbound, len(m.Inbounds))
	for i, in := range m.Inbounds {
		own := ins[i]
		in.Index, in.Name, in.Address, in.Port, in.Tags = own.Index, own.Name, own.Address, own.Port, own.Tags
		out.Inbounds[i] = in
	}
	return &out
}
