package inspect

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/resource"
)

// OverviewList is one page of overviews, shaped like every API list.
type OverviewList struct {
	Total int         `json:"total"`
	Items []*Overview `json:"items"`
	Next  *string     `json:"next"`
}

func (h *Handlers) listInMesh(w http.ResponseWriter, r *http.Request) {
	h.list(w, r, r.PathValue("mesh"))
}

func (h *Handlers) listAll(w http.ResponseWriter, r *http.Request) {
	h.list(w, r, "")
}

// list serves a page of overviews of mesh ("" for every mesh). Besides the
// resource lists' size, offset, name and filter[labels.K] it takes Kuma's
// overview filters tag=KEY:VALUE (repeatable) and gateway.
func (h *Handlers) list(w http.ResponseWriter, r *http.Request, mesh string) {
	q := r.URL.Query()
	opts, verr := apiserver.ParseListOptions(q)
	var errs validate.Errors
	if verr != nil {
		errs.Violations = append(errs.Violations, verr.Violations...)
	}
	f := parseFilter(&errs, q)
	if !errs.Empty() {
		apiserver.WriteError(w, http.StatusBadRequest, "Invalid request", "Invalid query parameters", errs.Violations...)
		return
	}
	opts.Mesh = mesh

	var (
		items []*resource.Resource
		total int
		err   error
	)
	if f.empty() {
		items, total, err = h.mgr.List(r.Context(), h.dp, opts)
	} else {
		// Spec filters cannot be pushed to the store: list every match of
		// the store's filters, keep those the spec filters accept, and page.
		all := opts
		all.Offset, all.Limit = 0, 0
		items, _, err = h.mgr.List(r.Context(), h.dp, all)
		items = f.apply(items)
		total = len(items)
		items = items[min(opts.Offset, total):min(opts.Offset+opts.Limit, total)]
	}
	if err != nil {
		apiserver.WriteErr(w, err)
		return
	}
	resp := OverviewList{Total: total, Items: make([]*Overview, 0, len(items))}
	for _, dp := range items {
		ov, err := h.buildOverview(r.Context(), dp)
		if err != nil {
			apiserver.WriteErr(w, err)
			return
		}
		resp.Items = append(resp.Items, ov)
	}
	resp.Next = apiserver.NextLink(r, opts.Offset+len(items), opts.Limit, total)
	apiserver.WriteJSON(w, http.StatusOK, resp)
}

// Gateway filter values: a gateway of any type, none, or one type.
const (
	gatewayAny       = "true"
	gatewayNone      = "false"
	gatewayBuiltin   = "builtin"
	gatewayDelegated = "delegated"
)

// filter holds the overview lists' spec filters.
type filter struct {
	// tags must all be carried by one inbound, or by the gateway; "*"
	// matches any value.
	tags map[string]string
	// gateway is "" (no filter) or one of the gateway* values.
	gateway string
}

func parseFilter(errs *validate.Errors, q url.Values) filter {
	var f filter
	for _, v := range q["tag"] {
		k, val, ok := strings.Cut(v, ":")
		if !ok || k == "" {
			errs.Add(validate.NewPath("tag"), "must be written tag=KEY:VALUE, got "+v)
			continue
		}
		if f.tags == nil {
			f.tags = map[string]string{}
		}
		f.tags[k] = val
	}
	if g := strings.ToLower(q.Get("gateway")); g != "" {
		switch g {
		case gatewayAny, gatewayNone, gatewayBuiltin, gatewayDelegated:
			f.gateway = g
		default:
			errs.Add(validate.NewPath("gateway"), "must be true, false, builtin or delegated")
		}
	}
	return f
}

func (f filter) empty() bool { return len(f.tags) == 0 && f.gateway == "" }

// apply keeps the dataplanes the filter accepts, in order.
func (f filter) apply(items []*resource.Resource) []*resource.Resource {
	out := items[:0]
	for _, res := range items {
		dp, ok := res.Spec.(*mesh.Dataplane)
		if ok && f.matches(dp) {
			out = append(out, res)
		}
	}
	return out
}

func (f filter) matches(dp *mesh.Dataplane) bool {
	var gw *mesh.Gateway
	var inbounds []mesh.Inbound
	if n := dp.Networking; n != nil {
		gw, inbounds = n.Gateway, n.Inbound
	}
	switch f.gateway {
	case gatewayAny:
		if gw == nil {
			return false
		}
	case gatewayNone:
		if gw != nil {
			return false
		}
	case gatewayBuiltin:
		if gw == nil || gw.Type != mesh.GatewayBuiltin {
			return false
		}
	case gatewayDelegated:
		if gw == nil || gw.Type == mesh.GatewayBuiltin {
			return false
		}
	}
	if len(f.tags) == 0 {
		return true
	}
	for _, in := range inbounds {
		if tagsMatch(f.tags, in.Tags) {
			return true
		}
	}
	return gw != nil && tagsMatch(f.tags, gw.Tags)
}

func tagsMatch(want, have map[string]string) bool {
	for k, v := range want {
		got, ok := have[k]
		if !ok || (v != "*" && got != v) {
			return false
		}
	}
	return true
}
