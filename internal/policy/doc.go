// Package policy matches Kuma-style targetRef policies against one data
// plane proxy and merges what they say. It is pure (no store, no Envoy
// types) and generic: every policy kind uses it, reading its spec through
// the spec's JSON encoding (targetRef, from[], to[], rules[], default).
//
// # Use
//
// Give Match the proxy and every policy of one kind in its mesh:
//
//	m, err := policy.Match(policy.Dataplane{Name: name, Labels: labels, Spec: dp},
//		[]policy.Policy{{Name: "p1", Labels: l1, Spec: spec1}, ...})
//
// The result says which policies select the proxy (Matched.Policies), and
// per inbound (Matched.Inbounds) which select that inbound, the merged
// client rules of their from[] sections (Inbound.From) and their rules[]
// entries (Inbound.Rules). Matched.To holds the merged destination rules of
// the to[] sections (Matched.Outbound picks the one for a service) and
// Matched.Single the merged top-level default. Confs are JSON; Decode and
// Typed turn them into the kind's Go types:
//
//	rules, err := policy.Typed[meshtimeout.Conf](m.To)
//	if r := m.To.Compute(map[string]string{"kuma.io/service": "backend"}); r != nil { ... }
//
// To match one set of policies against many proxies (the control plane
// does, once per mesh snapshot and kind), NewMatcher reads the specs once
// and Matcher.Match merges once per selection: proxies selected by the
// same policies share their rules (read-only) and differ only in their
// inbounds' own fields.
//
// # Selection (the top-level targetRef)
//
//   - absent or Mesh: every inbound and the gateway; with proxyTypes only
//     sidecars (no networking.gateway) or only gateways.
//   - MeshSubset{tags}: inbounds (or the gateway) whose tags include tags;
//     proxyTypes as for Mesh.
//   - MeshService{name}: inbounds (or the gateway) with kuma.io/service=name.
//   - MeshServiceSubset{name, tags}: the same, and tags.
//   - Dataplane{name} or Dataplane{labels}: the proxy of that name, or whose
//     labels include labels (neither: every proxy); sectionName keeps the
//     one inbound whose name (or, for an unnamed inbound, port) it is.
//   - MeshGateway and MeshHTTPRoute (and other kinds): skipped with a note
//     until builtin gateways and route-targeted policies exist.
//
// Ignored inbounds are never selected. A policy selects the proxy when it
// selects an inbound or the gateway; Mesh, and Dataplane without
// sectionName, also select a proxy that has neither (its to[] rules and
// single default apply).
//
// # Order and merging (DESIGN.md §4)
//
// Sections are sorted from least to most specific: by the top-level kind
// (Mesh < Dataplane < MeshSubset < MeshGateway < MeshService <
// MeshServiceSubset < MeshHTTPRoute; a Dataplane ref with sectionName
// beats one without, as in Kuma), then origin (label kuma.io/origin: global
// < zone; no label counts as zone, i.e. created locally), then the kind of
// the section's own targetRef, then the name in reverse lexical order (so
// "a" comes last and wins over "b"; the kuma.io/display-name label is used
// when set), then position in the policy. Confs are folded in that order
// with JSON Merge Patch (RFC 7396): later wins, objects merge key by key,
// null deletes, lists replace, except lists under a key starting with
// "append", which concatenate.
//
// # Rules
//
// A section's targetRef is turned into a Subset, a set of tags a client (for
// from[]) or destination (for to[]) must carry: Mesh is {}, MeshService is
// {kuma.io/service: name}, MeshSubset is its tags, MeshServiceSubset both.
// Rules lists, for each subset of the sections and each union of
// compatible ones (no tag with two values), the fold of every section whose
// subset it includes, most specific (most tags) first. So the first rule
// whose subset a set of tags includes (Rules.Compute) holds exactly the
// merged conf of every section matching those tags; Kuma builds the same
// answers from subsets with negations.
package policy
