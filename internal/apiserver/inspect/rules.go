package inspect

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/policy/meshtrafficpermission"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/store"
)

// ruleKinds are the policy kinds GET .../_rules reports, in that order.
// A kind listed here is matched with package policy; add a case to
// kindRules for what is specific to it.
var ruleKinds = []string{meshtrafficpermission.Kind}

// Rules answers GET /meshes/{mesh}/dataplanes/{name}/_rules: for each
// policy kind, which policies select the proxy and what they merge into,
// per inbound and for outbound traffic. Example (one MeshTrafficPermission
// that allows the whole mesh):
//
//	{"mesh": "default", "dataplane": "backend-1", "mtlsEnabled": true,
//	 "rules": [{"type": "MeshTrafficPermission",
//	   "policies": [{"name": "allow-all", "origin": "zone"}],
//	   "inbounds": [{"index": 0, "address": "10.0.0.2", "port": 8080, "tags": {"kuma.io/service": "backend"},
//	     "policies": [{"name": "allow-all", "origin": "zone"}],
//	     "fromRules": [{"subset": {}, "conf": {"action": "Allow"}, "origins": ["allow-all"]}],
//	     "rules": [],
//	     "permissions": [{"principal": {"any": true}, "action": "Allow", "origins": ["allow-all"]}]}],
//	   "toRules": []}]}
type Rules struct {
	Mesh      string `json:"mesh"`
	Dataplane string `json:"dataplane"`
	// MTLSEnabled tells whether the mesh enforces MeshTrafficPermissions
	// (they apply only with mTLS on).
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
	// ToRules are the merged to[] sections, first match wins (a
	// destination matches a subset when it carries all its tags).
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
	// subset a client's tags include applies to it.
	FromRules policy.Rules `json:"fromRules"`
	// Rules are the rules[] items, unmerged, least to most specific.
	Rules []policy.Entry `json:"rules"`
	// Permissions (MeshTrafficPermission only) are the resulting
	// first-match authorization rules; none means every client is denied.
	Permissions []Permission `json:"permissions,omitzero"`
	// Notes say which rules could not be enforced, and why.
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
	spec, ok := dp.Spec.(*mesh.Dataplane)
	if !ok {
		apiserver.WriteErr(w, fmt.Errorf("dataplane %s/%s has a spec of type %T", meshName, name, dp.Spec))
		return
	}
	out, err := h.buildRules(r.Context(), meshName, policy.Dataplane{Name: name, Labels: dp.Meta.Labels, Spec: spec})
	if err != nil {
		apiserver.WriteErr(w, err)
		return
	}
	apiserver.WriteJSON(w, http.StatusOK, out)
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
	for _, kind := range ruleKinds {
		policies, err := h.listPolicies(ctx, kind, meshName)
		if err != nil {
			return nil, err
		}
		kr, err := kindRules(kind, meshName, dp, policies)
		if err != nil {
			return nil, fmt.Errorf("%s rules of dataplane %s/%s: %w", kind, meshName, dp.Name, err)
		}
		out.Rules = append(out.Rules, *kr)
	}
	return out, nil
}

// listPolicies returns every policy of kind in the mesh.
func (h *Handlers) listPolicies(ctx context.Context, kind, meshName string) ([]policy.Policy, error) {
	d, ok := h.mgr.Registry().ByKind(kind)
	if !ok {
		return nil, fmt.Errorf("inspect: the registry has no %s kind", kind)
	}
	items, _, err := h.mgr.List(ctx, d, manager.ListOptions{Mesh: meshName})
	if err != nil {
		return nil, fmt.Errorf("listing the %ss of mesh %q: %w", kind, meshName, err)
	}
	out := make([]policy.Policy, 0, len(items))
	for _, it := range items {
		out = append(out, policy.Policy{Name: it.Meta.Name, Labels: it.Meta.Labels, Spec: it.Spec})
	}
	return out, nil
}

// kindRules matches the policies of one kind against the proxy.
func kindRules(kind, meshName string, dp policy.Dataplane, policies []policy.Policy) (*KindRules, error) {
	m, err := policy.Match(dp, policies)
	if err != nil {
		return nil, err
	}
	kr := &KindRules{Type: kind, Policies: m.Policies, ToRules: m.To, Default: m.Single, Notes: m.Notes}
	if kr.Policies == nil {
		kr.Policies = []policy.Ref{}
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
