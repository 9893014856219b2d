// Package meshhttproute matches and merges the MeshHTTPRoute policies of
// one proxy and turns them into the routes of its HTTP outbounds
// (proxymodel.Outbound.HTTPRoutes, routes.go there), as Kuma 2.14 does:
//
//   - policy.Match decides which policies select the proxy and orders them
//     from least to most specific;
//   - MergeRules gathers, per destination MeshService, the rules of their
//     to[] items and folds the rules with equal matches (JSON Merge Patch
//     of their defaults);
//   - SortRules makes one route per match, sorted by how specific the
//     match is (CompareMatch), with a catch-all route to the destination
//     itself last;
//   - the applier resolves backendRefs to clusters (the outbound's own,
//     subsets "<service>-<hash>" and other services) and filters to
//     header changes, redirects, rewrites and mirrors.
//
// Only outbounds whose protocol is http, http2 or grpc get routes, and
// only when a policy names their service; the others keep the default
// route. MeshTCPRoute (package meshtcproute) runs after this applier and
// leaves alone outbounds that got routes here.
package meshhttproute

import (
	"encoding/json"
	"fmt"

	api "github.com/trellis-mesh/trellis/api/policy/meshhttproute"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// Kind is the policy kind this package applies.
const Kind = "MeshHTTPRoute"

// Applier fills the HTTP routes of a proxy's outbounds from the mesh's
// MeshHTTPRoute policies.
type Applier struct{}

var _ proxymodel.Applier = Applier{}

// Apply implements proxymodel.Applier.
func (Applier) Apply(snap *proxymodel.MeshSnapshot, dp proxymodel.NamedDataplane, p *proxymodel.Proxy) error {
	items := snap.Policies[Kind]
	if len(items) == 0 || len(p.Outbounds) == 0 {
		return nil
	}
	specs, err := Selected(dp, items)
	if err != nil {
		return fmt.Errorf("dataplane %q: %s: %w", dp.Name, Kind, err)
	}
	rules, _, err := MergeRules(specs)
	if err != nil {
		return fmt.Errorf("dataplane %q: %s: %w", dp.Name, Kind, err)
	}
	for i := range p.Outbounds {
		out := &p.Outbounds[i]
		rs, ok := rules[out.Service]
		if !ok || !IsHTTP(out.Protocol) {
			continue
		}
		if err := Fill(out, SortRules(rs)); err != nil {
			return fmt.Errorf("dataplane %q: %s to %s: %w", dp.Name, Kind, out.Service, err)
		}
	}
	return nil
}

// IsHTTP reports whether a protocol is routed by MeshHTTPRoute.
func IsHTTP(protocol string) bool {
	switch protocol {
	case mesh.ProtocolHTTP, mesh.ProtocolHTTP2, mesh.ProtocolGRPC:
		return true
	}
	return false
}

// Selected returns the policies of items that select dp, least to most
// specific, with their specs decoded.
func Selected(dp proxymodel.NamedDataplane, items []proxymodel.PolicyItem) ([]Named, error) {
	m, err := policy.Match(policy.Dataplane{Name: dp.Name, Labels: dp.Labels, Spec: dp.Spec}, items)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]proxymodel.PolicyItem, len(items))
	for _, it := range items {
		byName[it.Name] = it
	}
	out := make([]Named, 0, len(m.Policies))
	for _, ref := range m.Policies {
		it, ok := byName[ref.Name]
		if !ok {
			continue
		}
		spec, err := decodeSpec(it.Spec)
		if err != nil {
			return nil, fmt.Errorf("policy %q: %w", ref.Name, err)
		}
		out = append(out, Named{Name: ref.Name, Spec: spec})
	}
	return out, nil
}

// decodeSpec returns a policy's spec as the API type, reading it through
// its JSON encoding unless it is one already.
func decodeSpec(spec any) (*api.Spec, error) {
	if s, ok := spec.(*api.Spec); ok && s != nil {
		return s, nil
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encoding the spec: %w", err)
	}
	var s api.Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("reading the spec: %w", err)
	}
	return &s, nil
}
