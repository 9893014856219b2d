package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/ca"
	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/vip"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// meshState is what the proxies of one mesh are built from, loaded once
// per recompute of the mesh. Proxies of one mesh state may be built
// concurrently.
type meshState struct {
	ix *proxymodel.Index
	// tls is the mesh's mTLS state; nil when mTLS is off.
	tls *ca.MeshTLS

	mu sync.Mutex
	// mtls holds the mTLS models made by mtlsFor, by service set and by
	// pointer.
	mtls      map[string]mtlsEntry
	mtlsByPtr map[*proxymodel.MTLS]mtlsEntry
	// shared holds the hashes of policy results shared by proxies
	// (fingerprintOf).
	shared map[sharedKey]fingerprint
}

func newMeshState(ix *proxymodel.Index, tls *ca.MeshTLS) *meshState {
	return &meshState{
		ix: ix, tls: tls, mtls: map[string]mtlsEntry{}, mtlsByPtr: map[*proxymodel.MTLS]mtlsEntry{},
		shared: map[sharedKey]fingerprint{},
	}
}

// loadMesh reads a mesh's snapshot from the store, indexes it and loads
// its CAs. An error loading the enabled CA fails the whole mesh: its
// proxies keep their last configuration rather than lose mTLS.
func loadMesh(ctx context.Context, mgr *manager.Manager, cas *ca.Manager, vips *vip.Allocator, meshName string) (*meshState, error) {
	ix, spec, err := loadIndex(ctx, mgr, vips, meshName)
	if err != nil {
		return nil, err
	}
	tls, err := cas.Mesh(ctx, meshName, spec)
	if err != nil {
		return nil, err
	}
	return newMeshState(ix, tls), nil
}

// loadIndex reads a mesh's snapshot from the store, with its services'
// virtual IPs (when vips is not nil), and indexes it.
func loadIndex(ctx context.Context, mgr *manager.Manager, vips *vip.Allocator, meshName string) (*proxymodel.Index, *mesh.Mesh, error) {
	reg := mgr.Registry()
	meshDesc, _ := reg.ByKind(kinds.Mesh)
	dpDesc, _ := reg.ByKind(kinds.Dataplane)
	snap := &proxymodel.MeshSnapshot{Mesh: meshName}
	m, err := mgr.Get(ctx, meshDesc, "", meshName)
	switch {
	case err == nil:
		snap.MeshSpec = m.Spec.(*mesh.Mesh)
	case !errors.Is(err, store.ErrNotFound):
		return nil, nil, fmt.Errorf("reading mesh %q: %w", meshName, err)
	}
	dps, _, err := mgr.List(ctx, dpDesc, manager.ListOptions{Mesh: meshName})
	if err != nil {
		return nil, nil, fmt.Errorf("listing the dataplanes of mesh %q: %w", meshName, err)
	}
	for _, dp := range dps {
		snap.Dataplanes = append(snap.Dataplanes, proxymodel.NamedDataplane{Name: dp.Meta.Name, Labels: dp.Meta.Labels, Spec: dp.Spec.(*mesh.Dataplane)})
	}
	all, err := insights.List(ctx, mgr.Store(), meshName)
	if err != nil {
		return nil, nil, fmt.Errorf("listing the insights of mesh %q: %w", meshName, err)
	}
	snap.Offline = map[string]bool{}
	for k, in := range all {
		if len(in.Subscriptions) > 0 && !in.Online() {
			snap.Offline[k.Name] = true
		}
	}
	appliers, err := loadPolicies(ctx, mgr, snap)
	if err != nil {
		return nil, nil, err
	}
	snapshotVIPs(ctx, vips, snap)
	return proxymodel.NewIndex(snap, appliers...), snap.MeshSpec, nil
}

// model returns the model of a sidecar proxy of the mesh, with its mTLS
// identities, and when one of its certificates is due to be reissued.
func (ms *meshState) model(name string) (*proxymodel.Proxy, time.Time, error) {
	p, err := ms.ix.Build(name)
	if err != nil {
		return nil, time.Time{}, err
	}
	t, err := ms.mtlsFor(p.Services)
	if err != nil {
		return nil, time.Time{}, err
	}
	p.MTLS = t.m
	return p, t.renew, nil
}

// generate returns the xDS resources of one proxy of the mesh, and when
// one of its certificates is due to be reissued (zero without mTLS).
// dnsPort is the DNS port the proxy announces (0: none).
func generate(ms *meshState, name string, proxyless bool, dnsPort uint32) (*build.Resources, time.Time, error) {
	if proxyless {
		res, err := build.Proxyless(ms.ix)
		return res, time.Time{}, err
	}
	p, renew, err := ms.model(name)
	if err != nil {
		return nil, time.Time{}, err
	}
	p.DNSPort = dnsPort
	res, err := build.Sidecar(p)
	return res, renew, err
}
