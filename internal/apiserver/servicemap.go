package apiserver

import (
	"net/http"

	"github.com/trellis-mesh/trellis/internal/cpmetrics/proxystats"
)

// serviceMap answers GET /meshes/{mesh}/_service-map: the mesh's services
// (with their proxies online and offline) and, from the metrics proxies
// stream to the control plane, the traffic between them over the last
// window (proxystats.ServiceMap documents the JSON).
func (h *InsightHandlers) serviceMap(w http.ResponseWriter, r *http.Request) {
	meshName := r.PathValue("mesh")
	svcs, err := h.r.ServiceInsights(r.Context(), meshName)
	if err != nil {
		writeMeshErr(w, err, meshName)
		return
	}
	nodes := make([]proxystats.ServiceNode, 0, len(svcs))
	for _, s := range svcs {
		nodes = append(nodes, proxystats.ServiceNode{Name: s.Name, Dataplanes: proxystats.DataplaneCount{
			Total: s.Dataplanes.Total, Online: s.Dataplanes.Online, Offline: s.Dataplanes.Offline,
		}})
	}
	stats := h.stats
	if stats == nil {
		stats = proxystats.New(0)
	}
	WriteJSON(w, http.StatusOK, stats.ServiceMap(meshName, nodes))
}
