// Package inspect serves the API's read-only views of data plane proxies,
// as Kuma 2.14 does: dataplane overviews (a Dataplane with its
// DataplaneInsight, the proxy's connection state) one by one and in pages,
// and the xDS configuration the control plane generates for a proxy.
//
// Routes (Register mounts them on an apiserver.Server):
//
//	GET /meshes/{mesh}/dataplanes+insights          overviews of a mesh
//	GET /meshes/{mesh}/dataplanes/_overview         the same (Kuma's newer path)
//	GET /dataplanes+insights                        overviews of every mesh
//	GET /dataplanes/_overview                       the same
//	GET /meshes/{mesh}/dataplanes+insights/{name}   one overview
//	GET /meshes/{mesh}/dataplanes/{name}/_overview  the same
//	GET /meshes/{mesh}/dataplanes/{name}/_config    the generated xDS
//	GET /meshes/{mesh}/dataplanes/{name}/_rules     matched and merged policies (rules.go)
//	GET /meshes/{mesh}/{plural}/{name}/_resources/dataplanes
//	                                                the dataplanes a policy selects (policy_dataplanes.go)
package inspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/store"
)

// OverviewType is the type field of a dataplane overview.
const OverviewType = "DataplaneOverview"

// dataplaneKind is the kind whose overviews are served.
const dataplaneKind = "Dataplane"

// ConfigFunc returns the xDS configuration the control plane generates for
// the dataplane mesh/name, as JSON. It may fail with an error wrapping
// store.ErrNotFound when the dataplane is gone.
type ConfigFunc func(ctx context.Context, mesh, name string) ([]byte, error)

// Handlers serves the inspect endpoints.
type Handlers struct {
	mgr    *manager.Manager
	st     store.Store
	config ConfigFunc
	dp     *resource.Descriptor
}

// New returns the inspect endpoints over mgr (Dataplanes) and st (insight
// records, see package insights). config may be nil until the xDS server is
// wired; _config then answers 501. mgr's registry must know Dataplane.
func New(mgr *manager.Manager, st store.Store, config ConfigFunc) (*Handlers, error) {
	dp, ok := mgr.Registry().ByKind(dataplaneKind)
	if !ok {
		return nil, fmt.Errorf("inspect: the registry has no %s kind", dataplaneKind)
	}
	return &Handlers{mgr: mgr, st: st, config: config, dp: dp}, nil
}

// Mounter is where Register mounts the routes; *apiserver.Server is one.
type Mounter interface {
	Handle(pattern string, h http.Handler)
}

// Register mounts the inspect routes. Their literal segments make them win
// over the resource API's /meshes/{mesh}/{path}[/{name}] patterns.
func (h *Handlers) Register(m Mounter) {
	m.Handle("GET /meshes/{mesh}/dataplanes+insights", http.HandlerFunc(h.listInMesh))
	m.Handle("GET /meshes/{mesh}/dataplanes/_overview", http.HandlerFunc(h.listInMesh))
	m.Handle("GET /dataplanes+insights", http.HandlerFunc(h.listAll))
	m.Handle("GET /dataplanes/_overview", http.HandlerFunc(h.listAll))
	m.Handle("GET /meshes/{mesh}/dataplanes+insights/{name}", http.HandlerFunc(h.overview))
	m.Handle("GET /meshes/{mesh}/dataplanes/{name}/_overview", http.HandlerFunc(h.overview))
	m.Handle("GET /meshes/{mesh}/dataplanes/{name}/_config", http.HandlerFunc(h.configDump))
	m.Handle("GET /meshes/{mesh}/dataplanes/{name}/_rules", http.HandlerFunc(h.rules))
	m.Handle("GET /meshes/{mesh}/{path}/{name}/_resources/dataplanes", http.HandlerFunc(h.policyDataplanes))
}

// Overview is Kuma's DataplaneOverview: the Dataplane's metadata, its spec
// under "dataplane" and its insight under "dataplaneInsight" ({} when the
// proxy never connected).
type Overview struct {
	Type             string            `json:"type"`
	Mesh             string            `json:"mesh"`
	Name             string            `json:"name"`
	CreationTime     string            `json:"creationTime"`
	ModificationTime string            `json:"modificationTime"`
	Labels           map[string]string `json:"labels,omitempty"`
	Dataplane        json.RawMessage   `json:"dataplane"`
	DataplaneInsight json.RawMessage   `json:"dataplaneInsight"`
}

func (h *Handlers) overview(w http.ResponseWriter, r *http.Request) {
	mesh, name := r.PathValue("mesh"), r.PathValue("name")
	dp, err := h.mgr.Get(r.Context(), h.dp, mesh, name)
	if err != nil {
		writeDataplaneErr(w, err, mesh, name)
		return
	}
	ov, err := h.buildOverview(r.Context(), dp)
	if err != nil {
		apiserver.WriteErr(w, err)
		return
	}
	apiserver.WriteJSON(w, http.StatusOK, ov)
}

// buildOverview joins a Dataplane with its stored insight.
func (h *Handlers) buildOverview(ctx context.Context, dp *resource.Resource) (*Overview, error) {
	spec, err := resource.MarshalSpec(dp.Spec)
	if err != nil {
		return nil, fmt.Errorf("encoding dataplane %s/%s: %w", dp.Meta.Mesh, dp.Meta.Name, err)
	}
	insight, err := h.insightJSON(ctx, dp.Meta.Mesh, dp.Meta.Name)
	if err != nil {
		return nil, err
	}
	var labels map[string]string
	if len(dp.Meta.Labels) > 0 {
		labels = dp.Meta.Labels
	}
	return &Overview{
		Type:             OverviewType,
		Mesh:             dp.Meta.Mesh,
		Name:             dp.Meta.Name,
		CreationTime:     formatTime(dp.Meta.CreationTime),
		ModificationTime: formatTime(dp.Meta.ModificationTime),
		Labels:           labels,
		Dataplane:        spec,
		DataplaneInsight: insight,
	}, nil
}

// insightJSON returns the stored insight of a proxy as it was written
// (package insights owns its shape), or {} when there is none.
func (h *Handlers) insightJSON(ctx context.Context, mesh, name string) (json.RawMessage, error) {
	rec, err := h.st.Get(ctx, store.Key{Kind: insights.Kind, Mesh: mesh, Name: name})
	if errors.Is(err, store.ErrNotFound) {
		return json.RawMessage(`{}`), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the insight of %s/%s: %w", mesh, name, err)
	}
	if len(rec.Spec) == 0 || !json.Valid(rec.Spec) {
		return nil, fmt.Errorf("the stored insight of %s/%s is not JSON", mesh, name)
	}
	return rec.Spec, nil
}

func (h *Handlers) configDump(w http.ResponseWriter, r *http.Request) {
	mesh, name := r.PathValue("mesh"), r.PathValue("name")
	if _, err := h.mgr.Get(r.Context(), h.dp, mesh, name); err != nil {
		writeDataplaneErr(w, err, mesh, name)
		return
	}
	if h.config == nil {
		apiserver.WriteError(w, http.StatusNotImplemented, "Not implemented",
			"this control plane does not generate dataplane configuration yet")
		return
	}
	body, err := h.config(r.Context(), mesh, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeDataplaneErr(w, err, mesh, name)
		return
	case err != nil:
		apiserver.WriteError(w, http.StatusInternalServerError, "Could not generate the configuration",
			fmt.Sprintf("dataplane %q in mesh %q: %v", name, mesh, err))
		return
	case !json.Valid(body):
		apiserver.WriteError(w, http.StatusInternalServerError, "Could not generate the configuration",
			fmt.Sprintf("dataplane %q in mesh %q: the generated configuration is not JSON", name, mesh))
		return
	}
	apiserver.WriteBody(w, http.StatusOK, body)
}

// writeDataplaneErr answers a failed Dataplane lookup, naming it in the 404.
func writeDataplaneErr(w http.ResponseWriter, err error, mesh, name string) {
	if errors.Is(err, store.ErrNotFound) {
		apiserver.WriteError(w, http.StatusNotFound, "Could not find resource",
			fmt.Sprintf("there is no dataplane %q in mesh %q", name, mesh))
		return
	}
	apiserver.WriteErr(w, err)
}

// formatTime renders a resource time as the resource API does.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}
