package insights

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Kinds whose resources the summaries read.
const (
	meshKind      = "Mesh"
	dataplaneKind = "Dataplane"
)

// Dataplane statuses (Kuma's): online when connected and every inbound is
// healthy, partially degraded when connected with some inbounds unhealthy,
// offline otherwise.
const (
	StatusOnline            = "online"
	StatusOffline           = "offline"
	StatusPartiallyDegraded = "partially_degraded"
)

// proxyView is one Dataplane as the summaries see it.
type proxyView struct {
	mesh, name string
	services   []string
	// gateway is "", "builtin" or "delegated".
	gateway string
	status  string
	version string
	mtls    *MTLS
	created time.Time
	updated time.Time
}

// meshView is everything the summaries need of one mesh.
type meshView struct {
	res     *resource.Resource
	proxies []proxyView
	// counts is the number of resources per mesh-scoped kind.
	counts map[string]int
}

// Reader computes Kuma's insight summaries (MeshInsight, ServiceInsight,
// GlobalInsight) on demand from the store: the Dataplanes and their
// DataplaneInsights, and the number of resources of every kind. Nothing is
// cached or written, so every control-plane instance answers the same.
type Reader struct {
	mgr *manager.Manager
	st  store.Store
}

// NewReader returns a Reader over mgr's registry and store.
func NewReader(mgr *manager.Manager) *Reader {
	return &Reader{mgr: mgr, st: mgr.Store()}
}

func (r *Reader) desc(kind string) (*resource.Descriptor, error) {
	d, ok := r.mgr.Registry().ByKind(kind)
	if !ok {
		return nil, fmt.Errorf("insights: the registry has no %s kind", kind)
	}
	return d, nil
}

// meshes returns the meshes, sorted by name; one when name is not empty
// (store.ErrNotFound when it does not exist).
func (r *Reader) meshes(ctx context.Context, name string) ([]*resource.Resource, error) {
	md, err := r.desc(meshKind)
	if err != nil {
		return nil, err
	}
	if name != "" {
		m, err := r.mgr.Get(ctx, md, "", name)
		if err != nil {
			return nil, err
		}
		return []*resource.Resource{m}, nil
	}
	items, _, err := r.mgr.List(ctx, md, manager.ListOptions{})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(items, func(a, b *resource.Resource) int { return compareStrings(a.Meta.Name, b.Meta.Name) })
	return items, nil
}

// view loads one mesh's proxies and resource counts.
func (r *Reader) view(ctx context.Context, m *resource.Resource) (*meshView, error) {
	name := m.Meta.Name
	dd, err := r.desc(dataplaneKind)
	if err != nil {
		return nil, err
	}
	dps, _, err := r.mgr.List(ctx, dd, manager.ListOptions{Mesh: name})
	if err != nil {
		return nil, fmt.Errorf("listing the dataplanes of mesh %q: %w", name, err)
	}
	ins, err := List(ctx, r.st, name)
	if err != nil {
		return nil, fmt.Errorf("listing the insights of mesh %q: %w", name, err)
	}
	v := &meshView{res: m, counts: map[string]int{}}
	for _, dp := range dps {
		v.proxies = append(v.proxies, proxyOf(dp, ins[store.Key{Mesh: dp.Meta.Mesh, Name: dp.Meta.Name}]))
	}
	for _, d := range r.mgr.Registry().All() {
		if d.Scope != "Mesh" {
			continue
		}
		page, err := r.st.List(ctx, store.Query{Kind: d.Kind, Mesh: name, Limit: 1})
		if err != nil {
			return nil, fmt.Errorf("counting the %s resources of mesh %q: %w", d.Kind, name, err)
		}
		if page.Total > 0 {
			v.counts[d.Kind] = page.Total
		}
	}
	return v, nil
}

// proxyOf summarizes one Dataplane with its insight (nil: never connected).
func proxyOf(dp *resource.Resource, in *DataplaneInsight) proxyView {
	spec, _ := dp.Spec.(*mesh.Dataplane)
	p := proxyView{mesh: dp.Meta.Mesh, name: dp.Meta.Name, services: spec.ServiceNames(), status: StatusOffline,
		created: dp.Meta.CreationTime, updated: dp.Meta.ModificationTime}
	switch {
	case spec.IsBuiltinGateway():
		p.gateway = "builtin"
	case spec.IsDelegatedGateway():
		p.gateway = "delegated"
	}
	if in == nil {
		return p
	}
	p.mtls = in.MTLS
	if last := in.Last(); last != nil {
		p.version = last.Version["trellisDp"]
	}
	if in.Online() {
		p.status = inboundStatus(spec)
	}
	return p
}

// inboundStatus is the status of a connected proxy from its inbounds'
// reported health.
func inboundStatus(spec *mesh.Dataplane) string {
	if spec == nil || spec.Networking == nil || len(spec.Networking.Inbound) == 0 {
		return StatusOnline
	}
	unhealthy := 0
	for _, in := range spec.Networking.Inbound {
		if in.Health != nil && in.Health.Ready != nil && !*in.Health.Ready {
			unhealthy++
		}
	}
	switch unhealthy {
	case 0:
		return StatusOnline
	case len(spec.Networking.Inbound):
		return StatusOffline
	}
	return StatusPartiallyDegraded
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// formatTime renders a time as the resource API does.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}
