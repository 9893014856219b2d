package inspect

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/store"
)

// DataplaneMeta names one dataplane in a PolicyDataplanes list, as Kuma's
// resource meta does.
type DataplaneMeta struct {
	Type   string            `json:"type"`
	Mesh   string            `json:"mesh"`
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// PolicyDataplanes answers GET
// /meshes/{mesh}/{plural}/{name}/_resources/dataplanes: one page of the
// dataplanes of the mesh the policy selects (its top-level targetRef, as
// package policy matches it for the xDS builder), sorted by name, in
// Kuma's InspectDataplanesForPolicyResponse shape:
//
//	{"total": 2, "items": [{"type": "Dataplane", "mesh": "default", "name": "web-1",
//	  "labels": {"team": "a"}}], "next": "http://.../_resources/dataplanes?offset=1&size=1"}
//
// It takes the lists' size, offset, name (contains) and
// filter[labels.KEY]=VALUE parameters. The answer is 404 when the mesh or
// the policy does not exist, and for a plural that is not a policy kind.
type PolicyDataplanes struct {
	Total int             `json:"total"`
	Items []DataplaneMeta `json:"items"`
	Next  *string         `json:"next"`
}

func (h *Handlers) policyDataplanes(w http.ResponseWriter, r *http.Request) {
	meshName, plural, name := r.PathValue("mesh"), r.PathValue("path"), r.PathValue("name")
	d, ok := h.policyKind(w, plural)
	if !ok {
		return
	}
	opts, verr := apiserver.ParseListOptions(r.URL.Query())
	if verr != nil {
		apiserver.WriteError(w, http.StatusBadRequest, "Invalid request", "Invalid query parameters", verr.Violations...)
		return
	}
	if md, ok := h.mgr.Registry().ByKind("Mesh"); ok {
		if _, err := h.mgr.Get(r.Context(), md, "", meshName); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				apiserver.WriteError(w, http.StatusNotFound, "Could not find resource", fmt.Sprintf("there is no mesh %q", meshName))
				return
			}
			apiserver.WriteErr(w, err)
			return
		}
	}
	res, err := h.mgr.Get(r.Context(), d, meshName, name)
	if errors.Is(err, store.ErrNotFound) {
		apiserver.WriteError(w, http.StatusNotFound, "Could not retrieve policy",
			fmt.Sprintf("there is no %s %q in mesh %q", d.Kind, name, meshName))
		return
	}
	if err != nil {
		apiserver.WriteErr(w, err)
		return
	}
	page, limit := opts.Offset, opts.Limit
	opts.Mesh, opts.Offset, opts.Limit = meshName, 0, 0
	dps, _, err := h.mgr.List(r.Context(), h.dp, opts)
	if err != nil {
		apiserver.WriteErr(w, err)
		return
	}
	selected, err := selectedBy(asPolicy(res), dps)
	if err != nil {
		apiserver.WriteErr(w, fmt.Errorf("matching %s %q against the dataplanes of mesh %q: %w", d.Kind, name, meshName, err))
		return
	}
	total := len(selected)
	selected = selected[min(page, total):min(page+limit, total)]
	out := PolicyDataplanes{Total: total, Items: make([]DataplaneMeta, 0, len(selected))}
	for _, dp := range selected {
		var labels map[string]string
		if len(dp.Meta.Labels) > 0 {
			labels = dp.Meta.Labels
		}
		out.Items = append(out.Items, DataplaneMeta{Type: dataplaneKind, Mesh: dp.Meta.Mesh, Name: dp.Meta.Name, Labels: labels})
	}
	out.Next = apiserver.NextLink(r, page+len(selected), limit, total)
	apiserver.WriteJSON(w, http.StatusOK, out)
}

// policyKind finds the policy kind served at plural, answering 404 itself
// when there is none (400 for a kind Trellis does not support yet).
func (h *Handlers) policyKind(w http.ResponseWriter, plural string) (*resource.Descriptor, bool) {
	reg := h.mgr.Registry()
	d, ok := reg.ByPath(plural)
	if ok && d.IsPolicy() && d.Scope == resource.ScopeMesh {
		return d, true
	}
	if kind, unsupported := reg.Unsupported(plural); unsupported {
		apiserver.WriteError(w, http.StatusBadRequest, "Resource type not supported", kind+" is not supported yet by Trellis")
		return nil, false
	}
	apiserver.WriteError(w, http.StatusNotFound, "Not found",
		fmt.Sprintf("%q is not a policy type: GET /_resources lists the policy types", plural))
	return nil, false
}

// selectedBy keeps the dataplanes p selects, in order: those where
// policy.Match counts p among the policies of the proxy.
func selectedBy(p policy.Policy, dps []*resource.Resource) ([]*resource.Resource, error) {
	var out []*resource.Resource
	for _, res := range dps {
		dp, err := policyDataplane(res)
		if err != nil {
			return nil, err
		}
		m, err := policy.Match(dp, []policy.Policy{p})
		if err != nil {
			return nil, err
		}
		if len(m.Policies) > 0 {
			out = append(out, res)
		}
	}
	return out, nil
}
