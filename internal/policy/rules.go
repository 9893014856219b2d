package policy

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
)

// maxSubsets caps the unions built for one list of rules; past it, some
// combinations of overlapping subsets fall back to a less specific rule
// (and a note says so). Real policies stay far below it.
const maxSubsets = 1024

// buildRules turns sections into first-match rules: one per subset of a
// section and per union of compatible subsets, each holding the fold of
// every section whose subset it includes, most specific first.
func (m *Matched) buildRules(sections []section) (Rules, error) {
	rules := Rules{}
	if len(sections) == 0 {
		return rules, nil
	}
	slices.SortStableFunc(sections, compareSections)
	subsets := make([]Subset, len(sections))
	for i, s := range sections {
		subsets[i], _ = subsetOf(*s.ref)
	}
	closure := m.closure(subsets)
	for _, ss := range closure {
		var matching []section
		for i, s := range sections {
			if subsets[i].Matches(ss) {
				matching = append(matching, s)
			}
		}
		r, err := mergeSections(ss, matching)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	slices.SortStableFunc(rules, func(a, b Rule) int {
		if c := cmp.Compare(len(b.Subset), len(a.Subset)); c != 0 {
			return c
		}
		return cmp.Compare(a.Subset.String(), b.Subset.String())
	})
	return rules, nil
}

// closure returns the distinct subsets and every union of compatible ones.
func (m *Matched) closure(subsets []Subset) []Subset {
	var out []Subset
	seen := map[string]bool{}
	add := func(s Subset) bool {
		key := s.String()
		if seen[key] {
			return true
		}
		if len(out) >= maxSubsets {
			return false
		}
		seen[key] = true
		out = append(out, s)
		return true
	}
	for _, s := range subsets {
		add(s)
	}
	full := true
	for i := 0; i < len(out); i++ {
		for j := 0; j < i; j++ {
			if u, ok := union(out[i], out[j]); ok && !add(u) {
				full = false
			}
		}
	}
	if !full {
		m.Notes = append(m.Notes, fmt.Sprintf("more than %d overlapping subsets: some clients or destinations matching several of them get a less specific rule", maxSubsets))
	}
	return out
}

// union returns the tags of both subsets, or false when they give one tag
// two values (no client can match both).
func union(a, b Subset) (Subset, bool) {
	u := Subset{}
	for k, v := range a {
		u[k] = v
	}
	for k, v := range b {
		if prev, ok := u[k]; ok && prev != v {
			return nil, false
		}
		u[k] = v
	}
	return u, true
}

// mergeSections folds sorted sections into one rule for ss.
func mergeSections(ss Subset, sections []section) (Rule, error) {
	confs := make([]json.RawMessage, 0, len(sections))
	origins := []string{}
	for _, s := range sections {
		confs = append(confs, s.conf)
		if !slices.Contains(origins, s.name) {
			origins = append(origins, s.name)
		}
	}
	conf, err := Merge(confs...)
	if err != nil {
		return Rule{}, fmt.Errorf("merging %v: %w", origins, err)
	}
	if conf == nil {
		conf = json.RawMessage(`{}`)
	}
	return Rule{Subset: ss, Conf: conf, Origins: origins}, nil
}
