package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Zone overviews, as Kuma 2.14 serves them (GET /zones and /zones/{name}
// are the resource API's, Zone being a global kind):
//
//	GET /zones+insights                    ZoneOverview of every zone (a list; name= filters)
//	GET /zones+insights/{name}             one ZoneOverview
//	GET /zoneingresses+insights[/{name}]   ZoneIngressOverview(s)
//	GET /zoneegresses+insights[/{name}]    ZoneEgressOverview(s)
//
// Their literal first segments win over the resource API's /{path} patterns.
func (h *InsightHandlers) registerZones(s *Server) {
	s.Handle("GET /zones+insights", http.HandlerFunc(h.zoneOverviews))
	s.Handle("GET /zones+insights/{name}", http.HandlerFunc(h.zoneOverview))
	s.Handle("GET /zoneingresses+insights", h.zoneProxies(false, false))
	s.Handle("GET /zoneingresses+insights/{name}", h.zoneProxies(false, true))
	s.Handle("GET /zoneegresses+insights", h.zoneProxies(true, false))
	s.Handle("GET /zoneegresses+insights/{name}", h.zoneProxies(true, true))
}

func (h *InsightHandlers) zoneOverviews(w http.ResponseWriter, r *http.Request) {
	items, err := h.r.ZoneOverviews(r.Context(), "")
	if err != nil {
		WriteErr(w, err)
		return
	}
	writePage(w, r, filterByName(items, r.URL.Query().Get("name"), func(z insights.ZoneOverview) string { return z.Name }))
}

func (h *InsightHandlers) zoneOverview(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	items, err := h.r.ZoneOverviews(r.Context(), name)
	if err != nil {
		writeNamedErr(w, err, "zone", name)
		return
	}
	WriteJSON(w, http.StatusOK, items[0])
}

// zoneProxies serves ingress (egress false) or egress overviews: the list,
// or the one named in the path when one is true.
func (h *InsightHandlers) zoneProxies(egress, one bool) http.Handler {
	what := "zone ingress"
	if egress {
		what = "zone egress"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		items, err := h.r.ZoneIngressOverviews(r.Context(), egress, name)
		switch {
		case err != nil && one:
			writeNamedErr(w, err, what, name)
		case err != nil:
			WriteErr(w, err)
		case one:
			WriteJSON(w, http.StatusOK, items[0])
		default:
			writePage(w, r, filterByName(items, r.URL.Query().Get("name"), func(z insights.ZoneProxyOverview) string { return z.Name }))
		}
	})
}

// filterByName keeps the items whose name contains sub (all when empty),
// like the resource lists' name= parameter.
func filterByName[T any](items []T, sub string, name func(T) string) []T {
	if sub == "" {
		return items
	}
	out := make([]T, 0, len(items))
	for _, it := range items {
		if strings.Contains(name(it), sub) {
			out = append(out, it)
		}
	}
	return out
}

// writeNamedErr answers a failed lookup, naming what was looked up in the 404.
func writeNamedErr(w http.ResponseWriter, err error, what, name string) {
	if errors.Is(err, store.ErrNotFound) {
		WriteError(w, http.StatusNotFound, "Could not find resource", fmt.Sprintf("there is no %s %q", what, name))
		return
	}
	WriteErr(w, err)
}

// withMode adds the control plane's mode ("standalone", "global" or
// "zone") and, in zone mode, its zone to the index (GET /).
func (s *Server) withMode(index map[string]string) map[string]string {
	index["mode"] = s.info.Mode
	if s.mode != "" { // set by UseMode (ownership.go)
		index["mode"] = s.mode
	}
	if index["mode"] == "" {
		index["mode"] = "standalone"
	}
	if s.info.Zone != "" {
		index["zone"] = s.info.Zone
	}
	return index
}
