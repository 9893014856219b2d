package inspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/policy/meshhttproute"
	"github.com/trellis-mesh/trellis/internal/policy/meshtcproute"
	"github.com/trellis-mesh/trellis/internal/policy/meshtrafficpermission"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/store"
)

// RuleKinds are the policy kinds GET .../_rules reports, in that order:
// MeshTrafficPermission, then the traffic policies the xDS builder
// translates (internal/xds/server/policies.go lists what it matches).
// Every kind is matched with package policy, as the control plane does;
// kindRules adds what is specific to one kind.
var RuleKinds = []string{
	meshtrafficpermission.Kind,
	"MeshTimeout",
	"MeshRetry",
	"MeshCircuitBreaker",
	"MeshHealthCheck",
	"MeshFaultInjection",
	"MeshRateLimit",
	"MeshLoadBalancingStrategy",
	"MeshTLS",
	meshhttproute.Kind, // before MeshTCPRoute, which yields to it
	meshtcproute.Kind,
}

// Rules answers GET /meshes/{mesh}/dataplanes/{name}/_rules: for each
// policy kind of RuleKinds, which policies select the proxy and what they
// merge into, per inbound (from[] and rules[]) and per outbound (to[]).
// Every kind is listed, with empty lists when no policy selects the proxy.
// MeshHTTPRoute and MeshTCPRoute report the rules their own packages merge
// per destination service (routes.go).
// Example (a MeshTimeout for the whole mesh and one for backend):
//
//	{"mesh": "default", "dataplane": "web-1", "mtlsEnabled": true,
//	 "rules": [..., {"type": "MeshTimeout",
//	   "policies": [{"name": "all", "origin": "zone"}, {"name": "to-backend", "origin": "zone"}],
//	   "inbounds": [{"index": 0, "address": "10.0.0.2", "port": 8080, "tags": {"kuma.io/service": "web"},
//	     "policies": [...],
//	     "fromRules": [{"subset": {}, "conf": {"idleTimeout": "1h"}, "origins": ["all"]}],
//	     "rules": []}],
//	   "outbounds": [{"address": "127.0.0.1", "port": 10001, "service": "backend",
//	     "tags": {"kuma.io/service": "backend"}, "protocol": "http", "subset": {"kuma.io/service": "backend"},
//	     "conf": {"connectionTimeout": "2s", "http": {"requestTimeout": "500ms"}},
//	     "origins": ["all", "to-backend"]}],
//	   "toRules": [...]}, ...]}
type Rules struct {
	Mesh      string `json:"mesh"`
	Dataplane string `json:"dataplane"`
	// MTLSEnabled tells whether the mesh has mTLS on: MeshTrafficPermission
	// and MeshTLS apply only then.
	MTLSEnabled bool        `json:"mtlsEnabled"`
	Rules       []KindRules `json:"rules"`
}

// KindRules is what the policies of one kind say about the proxy.
type KindRules struct {
	// Type is the policy kind.
	Type string `json:"type"`
	// Policies select the proxy, least to most specific.
	Policies []policy.Ref  `json:"policies"`
	Inbounds []InboundRule `json:"inbounds"`
	// Outbounds has one item per outbound of the proxy (networking.outbound
	// with a kuma.io/service tag, in Dataplane order) for kinds with to[]
	// sections; it is empty for the others.
	Outbounds []OutboundRule `json:"outbounds"`
	// ToRules are the merged to[] sections, first match wins (a
	// destination matches a subset when it carries all its tags); for the
	// route kinds, one rule per destination service.
	ToRules policy.Rules `json:"toRules"`
	// Default is the merged top-level default, for kinds that have one.
	Default *policy.Rule `json:"default,omitempty"`
	// Notes say which policies or sections were skipped, and why.
	Notes []string `json:"notes,omitempty"`
}

// InboundRule is what the policies of one kind say about one inbound.
type InboundRule struct {
	// Index is the inbound's position in networking.inbound.
	Index   int               `json:"index"`
	Name    string            `json:"name,omitempty"`
	Address string            `json:"address"`
	Port    uint32            `json:"port"`
	Tags    map[string]string `json:"tags"`
	// Policies select the inbound, least to most specific.
	Policies []policy.Ref `json:"policies"`
	// FromRules are the merged from[] sections: the first rule whose
	// subset a client's tags include applies to it; the rule with the
	// empty subset is what applies to every client (the xDS builder reads
	// that one for inbound settings).
	FromRules policy.Rules `json:"fromRules"`
	// Rules are the rules[] items, unmerged, least to most specific.
	Rules []policy.Entry `json:"rules"`
	// Permissions (MeshTrafficPermission only) are the resulting
	// first-match authorization rules; none means every client is denied.
	Permissions []Permission `json:"permissions,omitzero"`
	// Notes say which rules could not be enforced, and why.
	Notes []string `json:"notes,omitempty"`
}

// OutboundRule is what the to[] sections of one kind's policies say about
// traffic to one outbound: the merged conf the xDS builder applies to it
// (policy.Matched.Outbound of its kuma.io/service).
type OutboundRule struct {
	// Address and Port are where the proxy listens for the outbound.
	Address string `json:"address"`
	Port    uint32 `json:"port"`
	// Service is the destination's kuma.io/service and Tags the
	// outbound's tags.
	Service string            `json:"service"`
	Tags    map[string]string `json:"tags"`
	// Protocol is the outbound's protocol as the control plane decides
	// it: its kuma.io/protocol tag, else that of the service's inbounds
	// in the mesh, else tcp.
	Protocol string `json:"protocol"`
	// Subset is the to[] rule that matched (absent when none did).
	Subset policy.Subset `json:"subset,omitzero"`
	// Conf is the merged conf, null when no to[] section applies (for
	// the route kinds, see routes.go).
	Conf json.RawMessage `json:"conf"`
	// Origins name the policies merged into Conf, in merge order (the
	// last one wins a conflict).
	Origins []string `json:"origins"`
	// Notes say why Conf is not applied, when it is not.
	Notes []string `json:"notes,omitempty"`
}

// Permission is one first-match authorization rule of an inbound.
type Permission struct {
	Principal proxymodel.Principal `json:"principal"`
	// Action is Allow, Deny or AllowWithShadowDeny.
	Action  string   `json:"action"`
	Origins []string `json:"origins"`
}

func (h *Handlers) rules(w http.ResponseWriter, r *http.Request) {
	meshName, name := r.PathValue("mesh"), r.PathValue("name")
	dp, err := h.mgr.Get(r.Context(), h.dp, meshName, name)
	if err != nil {
		writeDataplaneErr(w, err, meshName, name)
		return
	}
	pdp, err := policyDataplane(dp)
	if err != nil {
		apiserver.WriteErr(w, err)
		return
	}
	out, err := h.buildRules(r.Context(), meshName, pdp)
	if err != nil {
		apiserver.WriteErr(w, err)
		return
	}
	apiserver.WriteJSON(w, http.StatusOK, out)
}

// policyDataplane turns a stored Dataplane into what package policy
// matches.
func policyDataplane(dp *resource.Resource) (policy.Dataplane, error) {
	spec, ok := dp.Spec.(*mesh.Dataplane)
	if !ok {
		return policy.Dataplane{}, fmt.Errorf("dataplane %s/%s has a spec of type %T", dp.Meta.Mesh, dp.Meta.Name, dp.Spec)
	}
	return policy.Dataplane{Name: dp.Meta.Name, Labels: dp.Meta.Labels, Spec: spec}, nil
}

func (h *Handlers) buildRules(ctx context.Context, meshName string, dp policy.Dataplane) (*Rules, error) {
	out := &Rules{Mesh: meshName, Dataplane: dp.Name, Rules: []KindRules{}}
	if d, ok := h.mgr.Registry().ByKind("Mesh"); ok {
		m, err := h.mgr.Get(ctx, d, "", meshName)
		switch {
		case err == nil:
			spec, _ := m.Spec.(*mesh.Mesh)
			out.MTLSEnabled = spec.MTLSEnabled()
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
	}
	protocol, err := h.protocols(ctx, meshName)
	if err != nil {
		return nil, err
	}
	httpRouted := map[string]bool{}
	for _, kind := range RuleKinds {
		d, ok := h.mgr.Registry().ByKind(kind)
		if !ok {
			return nil, fmt.Errorf("inspect: the registry has no %s kind", kind)
		}
		policies, err := h.listPolicies(ctx, d, meshName)
		if err != nil {
			return nil, err
		}
		kr, err := kindRules(kind, meshName, dp, policies)
		if err != nil {
			return nil, fmt.Errorf("%s rules of dataplane %s/%s: %w", kind, meshName, dp.Name, err)
		}
		if d.Policy != nil && d.Policy.HasTo {
			kr.Outbounds = outboundRules(dp, kr.ToRules, protocol)
		}
		if err := routeKind(kr, dp, policies, httpRouted); err != nil {
			return nil, fmt.Errorf("%s rules of dataplane %s/%s: %w", kind, meshName, dp.Name, err)
		}
		out.Rules = append(out.Rules, *kr)
	}
	return out, nil
}

// routeKind replaces what policy.Match says about the to[] sections of a
// route kind with the route packages' merge (routes.go); other kinds are
// left alone. httpRouted collects the services MeshHTTPRoutes route, for
// the MeshTCPRoute that comes after.
func routeKind(kr *KindRules, dp policy.Dataplane, policies []policy.Policy, httpRouted map[string]bool) error {
	var rr *routeRules
	var err error
	switch kr.Type {
	case meshhttproute.Kind:
		if rr, err = httpRouteRules(dp, policies); err != nil {
			return err
		}
		for svc := range rr.conf {
			httpRouted[svc] = true
		}
	case meshtcproute.Kind:
		if rr, err = tcpRouteRules(dp, policies); err != nil {
			return err
		}
	default:
		return nil
	}
	applyRouteRules(kr, rr, httpRouted)
	return nil
}

// protocols returns the protocol of each service of the mesh as the
// control plane's proxy model decides it (proxymodel.Index.Protocol).
func (h *Handlers) protocols(ctx context.Context, meshName string) (func(string) string, error) {
	items, _, err := h.mgr.List(ctx, h.dp, manager.ListOptions{Mesh: meshName})
	if err != nil {
		return nil, fmt.Errorf("listing the dataplanes of mesh %q: %w", meshName, err)
	}
	snap := &proxymodel.MeshSnapshot{Mesh: meshName}
	for _, it := range items {
		if spec, ok := it.Spec.(*mesh.Dataplane); ok {
			snap.Dataplanes = append(snap.Dataplanes, proxymodel.NamedDataplane{Name: it.Meta.Name, Labels: it.Meta.Labels, Spec: spec})
		}
	}
	return proxymodel.NewIndex(snap).Protocol, nil
}

// listPolicies returns every policy of kind d in the mesh.
func (h *Handlers) listPolicies(ctx context.Context, d *resource.Descriptor, meshName string) ([]policy.Policy, error) {
	items, _, err := h.mgr.List(ctx, d, manager.ListOptions{Mesh: meshName})
	if err != nil {
		return nil, fmt.Errorf("listing the %ss of mesh %q: %w", d.Kind, meshName, err)
	}
	out := make([]policy.Policy, 0, len(items))
	for _, it := range items {
		out = append(out, asPolicy(it))
	}
	return out, nil
}

// asPolicy is a stored policy as package policy reads it.
func asPolicy(res *resource.Resource) policy.Policy {
	return policy.Policy{Name: res.Meta.Name, Labels: res.Meta.Labels, Spec: res.Spec}
}

// kindRules matches the policies of one kind against the proxy.
func kindRules(kind, meshName string, dp policy.Dataplane, policies []policy.Policy) (*KindRules, error) {
	m, err := policy.Match(dp, policies)
	if err != nil {
		return nil, err
	}
	kr := &KindRules{Type: kind, Policies: m.Policies, Outbounds: []OutboundRule{}, ToRules: m.To, Default: m.Single, Notes: m.Notes}
	if kr.Policies == nil {
		kr.Policies = []policy.Ref{}
	}
	if kr.ToRules == nil {
		kr.ToRules = policy.Rules{}
	}
	for i := range m.Inbounds {
		in := &m.Inbounds[i]
		ir := InboundRule{
			Index: in.Index, Name: in.Name, Address: in.Address, Port: in.Port, Tags: in.Tags,
			Policies: in.Policies, FromRules: in.From, Rules: in.Rules,
		}
		if kind == meshtrafficpermission.Kind {
			perms, notes, err := meshtrafficpermission.Permissions(meshName, in)
			if err != nil {
				return nil, err
			}
			ir.Permissions = []Permission{}
			for _, r := range perms.Rules {
				ir.Permissions = append(ir.Permissions, Permission{Principal: r.Principal, Action: r.Action, Origins: r.Origins})
			}
			ir.Notes = notes
		}
		kr.Inbounds = append(kr.Inbounds, ir)
	}
	if kr.Inbounds == nil {
		kr.Inbounds = []InboundRule{}
	}
	return kr, nil
}

// outboundRules computes, for each outbound of the proxy, the to[] rule
// that applies to its service, as the xDS builder does
// (proxymodel.Proxy.OutboundRule). Outbounds without a kuma.io/service
// (backendRef outbounds) are not built by the control plane and are left
// out.
func outboundRules(dp policy.Dataplane, to policy.Rules, protocol func(string) string) []OutboundRule {
	out := []OutboundRule{}
	if dp.Spec == nil || dp.Spec.Networking == nil {
		return out
	}
	m := policy.Matched{To: to}
	for _, ob := range dp.Spec.Networking.Outbound {
		svc := ob.Tags[mesh.ServiceTag]
		if svc == "" {
			continue
		}
		addr := ob.Address
		if addr == "" {
			addr = proxymodel.DefaultOutboundAddress
		}
		proto := protocol(svc)
		if tagged := ob.Tags[mesh.ProtocolTag]; tagged != "" {
			proto = tagged
		}
		or := OutboundRule{Address: addr, Port: ob.Port, Service: svc, Tags: ob.Tags, Protocol: proto, Conf: json.RawMessage("null"), Origins: []string{}}
		if r := m.Outbound(svc); r != nil {
			or.Subset, or.Conf, or.Origins = r.Subset, r.Conf, r.Origins
			if or.Subset == nil {
				or.Subset = policy.Subset{}
			}
		}
		out = append(out, or)
	}
	return out
}
