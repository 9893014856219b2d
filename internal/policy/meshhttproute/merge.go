package meshhttproute

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	api "github.com/trellis-mesh/trellis/api/policy/meshhttproute"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/internal/policy"
)

// Named is a MeshHTTPRoute spec and the name of its policy.
type Named struct {
	Name string
	Spec *api.Spec
}

// MergeRules merges the rules of the to[] items of specs (the policies
// that select a proxy, least to most specific) per destination service,
// as Kuma does: every item's rules are reversed and appended in policy
// order; rules with equal matches are folded into one (JSON Merge Patch of
// their defaults, later wins), which takes the place of the last of them;
// and the list is reversed back. So the most specific policy's rules come
// first, in the order written, and a rule that several policies share
// sits where the most specific one put it. Only MeshService destinations
// named by name are supported; other items are reported in notes.
func MergeRules(specs []Named) (map[string][]api.Rule, []string, error) {
	all := map[string][]api.Rule{}
	var notes []string
	for _, s := range specs {
		for i, to := range s.Spec.To {
			if to.TargetRef.Kind != common.MeshService || to.TargetRef.Name == "" {
				notes = append(notes, fmt.Sprintf("policy %q: to[%d] is skipped: only MeshService destinations named by name are supported", s.Name, i))
				continue
			}
			svc := to.TargetRef.Name
			for j := len(to.Rules) - 1; j >= 0; j-- {
				all[svc] = append(all[svc], to.Rules[j])
			}
		}
	}
	out := make(map[string][]api.Rule, len(all))
	for svc, rules := range all {
		merged, err := mergeByMatches(rules)
		if err != nil {
			return nil, nil, fmt.Errorf("rules to %s: %w", svc, err)
		}
		slices.Reverse(merged)
		out[svc] = merged
	}
	return out, notes, nil
}

// mergeByMatches folds rules with equal matches, keeping each folded rule
// at the position of its last appearance.
func mergeByMatches(rules []api.Rule) ([]api.Rule, error) {
	type entry struct {
		matches []api.Match
		confs   []json.RawMessage
		skip    bool
	}
	var entries []entry
	last := map[string]int{}
	for _, r := range rules {
		key, err := json.Marshal(r.Matches)
		if err != nil {
			return nil, fmt.Errorf("encoding matches: %w", err)
		}
		conf, err := json.Marshal(r.Default)
		if err != nil {
			return nil, fmt.Errorf("encoding a rule default: %w", err)
		}
		e := entry{matches: r.Matches, confs: []json.RawMessage{conf}}
		if i, ok := last[string(key)]; ok {
			e.confs = append(entries[i].confs, conf)
			entries[i] = entry{skip: true}
		}
		last[string(key)] = len(entries)
		entries = append(entries, e)
	}
	var out []api.Rule
	for _, e := range entries {
		if e.skip {
			continue
		}
		merged, err := policy.Merge(e.confs...)
		if err != nil {
			return nil, err
		}
		conf, err := policy.Decode[api.RuleConf](merged)
		if err != nil {
			return nil, err
		}
		out = append(out, api.Rule{Matches: e.matches, Default: conf})
	}
	return out, nil
}

// Route is one match of a rule with the rule's default: each match of a
// rule becomes a route of its own.
type Route struct {
	Match   api.Match
	Default api.RuleConf
}

// SortRules turns merged rules into routes in the order a proxy tries
// them, as Kuma does: one route per match, sorted (stably) from the most
// specific match to the least (CompareMatch), then a catch-all route
// (path prefix "/") unless a route is exactly that. Matches without a
// path get the path prefix "/" after sorting, and routes without
// backendRefs go to the destination itself (filled by the caller).
func SortRules(rules []api.Rule) []Route {
	var routes []Route
	for _, r := range rules {
		for _, m := range r.Matches {
			routes = append(routes, Route{Match: m, Default: r.Default})
		}
	}
	slices.SortStableFunc(routes, func(a, b Route) int { return CompareMatch(a.Match, b.Match) })
	if !slices.ContainsFunc(routes, func(r Route) bool { return isCatchAll(r.Match) }) {
		routes = append(routes, Route{Match: catchAll()})
	}
	for i := range routes {
		if routes[i].Match.Path == nil {
			routes[i].Match.Path = catchAll().Path
		}
	}
	return routes
}

func catchAll() api.Match {
	return api.Match{Path: &api.PathMatch{Type: api.PathPrefix, Value: "/"}}
}

// isCatchAll reports whether m is exactly the path prefix "/".
func isCatchAll(m api.Match) bool {
	return m.Path != nil && m.Path.Type == api.PathPrefix && m.Path.Value == "/" &&
		m.Method == nil && len(m.Headers) == 0 && len(m.QueryParams) == 0
}

// CompareMatch orders matches from the most specific (negative) to the
// least, as Gateway API and Kuma do: a match with a path before one
// without; by path type Exact, then PathPrefix, then RegularExpression;
// between prefixes or expressions the longer value first; then a match
// with a method before one without; then more header matches first; then
// more query parameter matches first.
func CompareMatch(a, b api.Match) int {
	if c := comparePath(a.Path, b.Path); c != 0 {
		return c
	}
	if c := cmp.Compare(boolRank(b.Method != nil), boolRank(a.Method != nil)); c != 0 {
		return c
	}
	if c := cmp.Compare(len(b.Headers), len(a.Headers)); c != 0 {
		return c
	}
	return cmp.Compare(len(b.QueryParams), len(a.QueryParams))
}

func comparePath(a, b *api.PathMatch) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	if c := cmp.Compare(pathRank(a.Type), pathRank(b.Type)); c != 0 {
		return c
	}
	if a.Type == api.Exact {
		return 0
	}
	return cmp.Compare(len(b.Value), len(a.Value))
}

func pathRank(t api.PathMatchType) int {
	switch t {
	case api.Exact:
		return 0
	case api.PathPrefix:
		return 1
	case api.RegularExpression:
		return 2
	}
	return 3
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}
