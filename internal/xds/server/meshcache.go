package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/ca"
	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/vip"
)

// meshCache keeps, per mesh, the Dataplanes and insights decoded by the
// last recompute with their store versions, so the next recompute decodes
// only the records that changed since. With thousands of proxies, decoding
// every Dataplane and insight on every recompute was the control plane's
// main cost. It is used by the reconciler, one recompute at a time.
type meshCache struct {
	mgr    *manager.Manager
	meshes map[string]*meshRecords
	// vips allocates the services' virtual IPs (nil: none).
	vips *vip.Allocator
	// zones adds the zone ingresses to a snapshot (nil: none).
	zones func(context.Context, *proxymodel.MeshSnapshot)
}

// meshRecords are one mesh's decoded records, by name.
type meshRecords struct {
	dataplanes map[string]cachedDataplane
	insights   map[string]cachedInsight
}

type cachedDataplane struct {
	version string
	dp      proxymodel.NamedDataplane
}

type cachedInsight struct {
	version string
	// offline: the proxy was connected and has left.
	offline bool
}

func newMeshCache(mgr *manager.Manager) *meshCache {
	return &meshCache{mgr: mgr, meshes: map[string]*meshRecords{}}
}

// forget drops a mesh's records (the mesh is gone or has no proxy here).
func (c *meshCache) forget(meshName string) {
	delete(c.meshes, meshName)
	if c.vips != nil {
		c.vips.Forget(meshName)
	}
}

// load reads a mesh's snapshot, indexes it and loads its CAs, as loadMesh
// does, decoding only records changed since the previous load.
func (c *meshCache) load(ctx context.Context, cas *ca.Manager, meshName string) (*meshState, error) {
	reg := c.mgr.Registry()
	meshDesc, _ := reg.ByKind(kinds.Mesh)
	snap := &proxymodel.MeshSnapshot{Mesh: meshName}
	m, err := c.mgr.Get(ctx, meshDesc, "", meshName)
	switch {
	case err == nil:
		snap.MeshSpec = m.Spec.(*mesh.Mesh)
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("reading mesh %q: %w", meshName, err)
	}
	recs := c.meshes[meshName]
	if recs == nil {
		recs = &meshRecords{dataplanes: map[string]cachedDataplane{}, insights: map[string]cachedInsight{}}
	}
	if snap.Dataplanes, err = recs.loadDataplanes(ctx, c.mgr, meshName); err != nil {
		return nil, err
	}
	if snap.Offline, err = recs.loadInsights(ctx, c.mgr.Store(), meshName); err != nil {
		return nil, err
	}
	c.meshes[meshName] = recs
	c.loadVIPs(ctx, snap)
	if c.zones != nil {
		c.zones(ctx, snap) // cross-zone endpoints (zoneproxy.go)
	}
	appliers, err := loadPolicies(ctx, c.mgr, snap)
	if err != nil {
		return nil, err
	}
	tls, err := cas.Mesh(ctx, meshName, snap.MeshSpec)
	if err != nil {
		return nil, err
	}
	return newMeshState(proxymodel.NewIndex(snap, appliers...), tls), nil
}

// loadDataplanes lists the mesh's Dataplanes, in the store's order,
// decoding those whose version changed.
func (r *meshRecords) loadDataplanes(ctx context.Context, mgr *manager.Manager, meshName string) ([]proxymodel.NamedDataplane, error) {
	dpDesc, _ := mgr.Registry().ByKind(kinds.Dataplane)
	page, err := mgr.Store().List(ctx, store.Query{Kind: kinds.Dataplane, Mesh: meshName})
	if err != nil {
		return nil, fmt.Errorf("listing the dataplanes of mesh %q: %w", meshName, err)
	}
	out := make([]proxymodel.NamedDataplane, 0, len(page.Items))
	seen := make(map[string]bool, len(page.Items))
	for _, rec := range page.Items {
		seen[rec.Name] = true
		cached, ok := r.dataplanes[rec.Name]
		if !ok || cached.version != rec.Version {
			spec, err := resource.UnmarshalSpec(dpDesc, rec.Spec)
			if err != nil {
				return nil, fmt.Errorf("dataplane %s/%s: %w", meshName, rec.Name, err)
			}
			cached = cachedDataplane{version: rec.Version,
				dp: proxymodel.NamedDataplane{Name: rec.Name, Labels: rec.Labels, Spec: spec.(*mesh.Dataplane), Version: rec.Version}}
			r.dataplanes[rec.Name] = cached
		}
		out = append(out, cached.dp)
	}
	for name := range r.dataplanes {
		if !seen[name] {
			delete(r.dataplanes, name)
		}
	}
	return out, nil
}

// loadInsights returns the mesh's offline Dataplanes, decoding the
// insights whose version changed.
func (r *meshRecords) loadInsights(ctx context.Context, st store.Store, meshName string) (map[string]bool, error) {
	page, err := st.List(ctx, store.Query{Kind: insights.Kind, Mesh: meshName})
	if err != nil {
		return nil, fmt.Errorf("listing the insights of mesh %q: %w", meshName, err)
	}
	offline := map[string]bool{}
	seen := make(map[string]bool, len(page.Items))
	for _, rec := range page.Items {
		seen[rec.Name] = true
		cached, ok := r.insights[rec.Name]
		if !ok || cached.version != rec.Version {
			subs, online, err := connectionState(rec.Spec)
			if err != nil {
				return nil, fmt.Errorf("decoding the insight of %s/%s: %w", meshName, rec.Name, err)
			}
			cached = cachedInsight{version: rec.Version, offline: subs > 0 && !online}
			r.insights[rec.Name] = cached
		}
		if cached.offline {
			offline[rec.Name] = true
		}
	}
	for name := range r.insights {
		if !seen[name] {
			delete(r.insights, name)
		}
	}
	return offline, nil
}

// connectionState reads from an insight record only what says whether its
// proxy is connected: how many subscriptions it remembers and whether the
// newest is still open (insights.DataplaneInsight.Online). Insights change
// with every ACK; decoding them whole was a large part of a recompute.
func connectionState(spec []byte) (subscriptions int, online bool, err error) {
	if len(spec) == 0 {
		return 0, false, nil
	}
	var in struct {
		Subscriptions []struct {
			DisconnectTime *json.RawMessage `json:"disconnectTime"`
		} `json:"subscriptions"`
	}
	if err := json.Unmarshal(spec, &in); err != nil {
		return 0, false, err
	}
	n := len(in.Subscriptions)
	online = n > 0 && (in.Subscriptions[n-1].DisconnectTime == nil || string(*in.Subscriptions[n-1].DisconnectTime) == "null")
	return n, online, nil
}
