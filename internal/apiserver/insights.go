package apiserver

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/trellis-mesh/trellis/internal/cpmetrics/proxystats"
	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/store"
)

// InsightHandlers serves Kuma's insight summaries, computed on request
// from the Dataplanes and their insights (package insights), and the
// service map (servicemap.go):
//
//	GET /mesh-insights                            MeshInsight of every mesh (a list)
//	GET /mesh-insights/{mesh}                     MeshInsight of one mesh
//	GET /meshes/{mesh}/service-insights           ServiceInsight of every service of a mesh (a list)
//	GET /meshes/{mesh}/service-insights/{name}    one service
//	GET /global-insight                           GlobalInsight
//	GET /meshes/{mesh}/_service-map               services and the traffic between them
type InsightHandlers struct {
	r     *insights.Reader
	stats *proxystats.Store
}

// NewInsightHandlers returns the insight endpoints; stats may be nil (the
// service map then has no edges).
func NewInsightHandlers(r *insights.Reader, stats *proxystats.Store) *InsightHandlers {
	return &InsightHandlers{r: r, stats: stats}
}

// Register mounts the routes on s.
func (h *InsightHandlers) Register(s *Server) {
	s.Handle("GET /mesh-insights", http.HandlerFunc(h.meshInsights))
	s.Handle("GET /mesh-insights/{mesh}", http.HandlerFunc(h.meshInsight))
	s.Handle("GET /meshes/{mesh}/service-insights", http.HandlerFunc(h.serviceInsights))
	s.Handle("GET /meshes/{mesh}/service-insights/{name}", http.HandlerFunc(h.serviceInsight))
	s.Handle("GET /global-insight", http.HandlerFunc(h.globalInsight))
	s.Handle("GET /meshes/{mesh}/_service-map", http.HandlerFunc(h.serviceMap))
	h.registerZones(s)
}

// insightList is one page of a list, shaped like every API list.
type insightList[T any] struct {
	Total int     `json:"total"`
	Items []T     `json:"items"`
	Next  *string `json:"next"`
}

// writePage answers one page of items after the list's size and offset.
func writePage[T any](w http.ResponseWriter, r *http.Request, items []T) {
	opts, verr := ParseListOptions(r.URL.Query())
	if verr != nil {
		WriteError(w, http.StatusBadRequest, "Invalid request", "Invalid query parameters", verr.Violations...)
		return
	}
	total := len(items)
	page := items[min(opts.Offset, total):min(opts.Offset+opts.Limit, total)]
	WriteJSON(w, http.StatusOK, insightList[T]{Total: total, Items: page, Next: NextLink(r, opts.Offset+len(page), opts.Limit, total)})
}

func (h *InsightHandlers) meshInsights(w http.ResponseWriter, r *http.Request) {
	items, err := h.r.MeshInsights(r.Context(), "")
	if err != nil {
		WriteErr(w, err)
		return
	}
	writePage(w, r, items)
}

func (h *InsightHandlers) meshInsight(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("mesh")
	items, err := h.r.MeshInsights(r.Context(), name)
	if err != nil {
		writeMeshErr(w, err, name)
		return
	}
	WriteJSON(w, http.StatusOK, items[0])
}

func (h *InsightHandlers) serviceInsights(w http.ResponseWriter, r *http.Request) {
	meshName := r.PathValue("mesh")
	items, err := h.r.ServiceInsights(r.Context(), meshName)
	if err != nil {
		writeMeshErr(w, err, meshName)
		return
	}
	writePage(w, r, items)
}

func (h *InsightHandlers) serviceInsight(w http.ResponseWriter, r *http.Request) {
	meshName, name := r.PathValue("mesh"), r.PathValue("name")
	items, err := h.r.ServiceInsights(r.Context(), meshName)
	if err != nil {
		writeMeshErr(w, err, meshName)
		return
	}
	for _, s := range items {
		if s.Name == name {
			WriteJSON(w, http.StatusOK, s)
			return
		}
	}
	WriteError(w, http.StatusNotFound, "Could not find resource",
		fmt.Sprintf("there is no service %q in mesh %q (no Dataplane serves it)", name, meshName))
}

func (h *InsightHandlers) globalInsight(w http.ResponseWriter, r *http.Request) {
	g, err := h.r.GlobalInsight(r.Context())
	if err != nil {
		WriteErr(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, g)
}

// writeMeshErr answers a failed lookup of a mesh's summaries, naming the
// mesh in the 404.
func writeMeshErr(w http.ResponseWriter, err error, meshName string) {
	if errors.Is(err, store.ErrNotFound) {
		WriteError(w, http.StatusNotFound, "Could not find resource", fmt.Sprintf("there is no mesh %q", meshName))
		return
	}
	WriteErr(w, err)
}
