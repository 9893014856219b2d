package inspect

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/mesh"
	httpapi "github.com/trellis-mesh/trellis/api/policy/meshhttproute"
	tcpapi "github.com/trellis-mesh/trellis/api/policy/meshtcproute"
	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/policy/meshhttproute"
	"github.com/trellis-mesh/trellis/internal/policy/meshtcproute"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// Route policies do not merge their to[] sections by subset like the
// other kinds: their to[] items carry rules, merged per destination
// service by packages meshhttproute and meshtcproute, which the control
// plane's appliers use. For them, _rules reports per destination service
// a conf shaped like a to[] item without its targetRef:
//
//	MeshHTTPRoute: {"rules": [{"matches": [...], "default": {...}}, ...]}
//	               one rule per match, in the order the proxy tries them,
//	               ending with the catch-all route (path prefix "/")
//	MeshTCPRoute:  {"rules": [{"default": {"backendRefs": [...]}}]}
//
// and its origins: the policies with a to[] item for that service.

// routeRules are the merged route rules of one kind, per destination
// service.
type routeRules struct {
	conf    map[string]json.RawMessage
	origins map[string][]string
	notes   []string
}

// toRules lists the route rules as to[] rules, one per service (sorted).
func (rr *routeRules) toRules() policy.Rules {
	svcs := make([]string, 0, len(rr.conf))
	for svc := range rr.conf {
		svcs = append(svcs, svc)
	}
	sort.Strings(svcs)
	out := policy.Rules{}
	for _, svc := range svcs {
		out = append(out, policy.Rule{Subset: policy.Subset{mesh.ServiceTag: svc}, Conf: rr.conf[svc], Origins: rr.origins[svc]})
	}
	return out
}

// httpRouteRules merges the MeshHTTPRoutes that select dp.
func httpRouteRules(dp policy.Dataplane, items []policy.Policy) (*routeRules, error) {
	named := proxymodel.NamedDataplane{Name: dp.Name, Labels: dp.Labels, Spec: dp.Spec}
	specs, err := meshhttproute.Selected(named, items)
	if err != nil {
		return nil, err
	}
	merged, notes, err := meshhttproute.MergeRules(specs)
	if err != nil {
		return nil, err
	}
	rr := &routeRules{conf: map[string]json.RawMessage{}, origins: map[string][]string{}, notes: notes}
	for svc, rules := range merged {
		var tried []httpapi.Rule
		for _, route := range meshhttproute.SortRules(rules) {
			tried = append(tried, httpapi.Rule{Matches: []httpapi.Match{route.Match}, Default: route.Default})
		}
		raw, err := json.Marshal(struct {
			Rules []httpapi.Rule `json:"rules"`
		}{tried})
		if err != nil {
			return nil, fmt.Errorf("encoding the routes to %s: %w", svc, err)
		}
		rr.conf[svc] = raw
	}
	for _, s := range specs {
		for _, to := range s.Spec.To {
			rr.addOrigin(to.TargetRef, len(to.Rules) > 0, s.Name)
		}
	}
	return rr, nil
}

// tcpRouteRules merges the MeshTCPRoutes that select dp.
func tcpRouteRules(dp policy.Dataplane, items []policy.Policy) (*routeRules, error) {
	named := proxymodel.NamedDataplane{Name: dp.Name, Labels: dp.Labels, Spec: dp.Spec}
	merged, err := meshtcproute.Merged(named, items)
	if err != nil {
		return nil, err
	}
	rr := &routeRules{conf: map[string]json.RawMessage{}, origins: map[string][]string{}}
	for svc, conf := range merged {
		raw, err := json.Marshal(struct {
			Rules []tcpapi.Rule `json:"rules"`
		}{[]tcpapi.Rule{{Default: conf}}})
		if err != nil {
			return nil, fmt.Errorf("encoding the routes to %s: %w", svc, err)
		}
		rr.conf[svc] = raw
	}
	m, err := policy.Match(dp, items)
	if err != nil {
		return nil, err
	}
	byName := map[string]policy.Policy{}
	for _, it := range items {
		byName[it.Name] = it
	}
	for _, ref := range m.Policies {
		spec, err := policy.Decode[tcpapi.Spec](mustJSON(byName[ref.Name].Spec))
		if err != nil {
			return nil, fmt.Errorf("policy %q: %w", ref.Name, err)
		}
		for _, to := range spec.To {
			rr.addOrigin(to.TargetRef, len(to.Rules) > 0, ref.Name)
		}
	}
	return rr, nil
}

// addOrigin records that policy has rules for a MeshService destination.
func (rr *routeRules) addOrigin(ref common.TargetRef, hasRules bool, name string) {
	if ref.Kind != common.MeshService || ref.Name == "" || !hasRules {
		return
	}
	if _, ok := rr.conf[ref.Name]; !ok || slices.Contains(rr.origins[ref.Name], name) {
		return
	}
	rr.origins[ref.Name] = append(rr.origins[ref.Name], name)
}

// mustJSON encodes a spec for policy.Decode; a spec that cannot be
// encoded decodes as null (policy.Match has already refused it).
func mustJSON(v any) json.RawMessage {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return raw
}

// applyRouteRules sets the route kinds' outbounds and to rules from the
// route packages' merge, with notes where the control plane does not apply
// them: MeshHTTPRoute only routes http, http2 and grpc outbounds, and a
// MeshTCPRoute yields to a MeshHTTPRoute on such outbounds.
func applyRouteRules(kr *KindRules, rr *routeRules, httpRouted map[string]bool) {
	kr.ToRules = rr.toRules()
	kr.Notes = append(kr.Notes, rr.notes...)
	for i := range kr.Outbounds {
		ob := &kr.Outbounds[i]
		conf, ok := rr.conf[ob.Service]
		if !ok {
			ob.Subset, ob.Conf, ob.Origins = nil, json.RawMessage("null"), []string{}
			continue
		}
		ob.Subset, ob.Conf, ob.Origins = policy.Subset{mesh.ServiceTag: ob.Service}, conf, rr.origins[ob.Service]
		if ob.Origins == nil {
			ob.Origins = []string{}
		}
		switch {
		case kr.Type == meshhttproute.Kind && !meshhttproute.IsHTTP(ob.Protocol):
			ob.Notes = append(ob.Notes, fmt.Sprintf("not applied: the outbound's protocol is %s; MeshHTTPRoute routes http, http2 and grpc outbounds", ob.Protocol))
		case kr.Type == meshtcproute.Kind && httpRouted[ob.Service] && meshhttproute.IsHTTP(ob.Protocol):
			ob.Notes = append(ob.Notes, "not applied: a MeshHTTPRoute routes this outbound")
		}
	}
}
