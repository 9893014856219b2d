package server

import (
	"context"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/vip"
)

// loadVIPs gives the snapshot its services' virtual IPs, allocating those
// of new services (once per recompute of the mesh, never per proxy).
func (c *meshCache) loadVIPs(ctx context.Context, snap *proxymodel.MeshSnapshot) {
	snapshotVIPs(ctx, c.vips, snap)
}

// snapshotVIPs sets snap.VIPs from the allocator (nothing when it is
// nil). An allocation that fails is logged: the services it left out get
// no VIP until a later recompute, the rest of the mesh is built as usual.
func snapshotVIPs(ctx context.Context, vips *vip.Allocator, snap *proxymodel.MeshSnapshot) {
	if vips == nil {
		return
	}
	table, err := vips.Sync(ctx, snap.Mesh, proxymodel.SnapshotServices(snap))
	if err != nil && ctx.Err() == nil {
		vips.Logger().Error("allocating virtual IPs", "mesh", snap.Mesh, "err", err)
	}
	snap.VIPs = table
}

// dnsPortOf returns the DNS port a connected proxy announced (0 when it
// is not connected here or runs no DNS server), for the inspect API.
func (s *Server) dnsPortOf(key proxyKey) uint32 {
	s.mu.Lock()
	ps := s.proxies[key]
	s.mu.Unlock()
	if ps == nil {
		return 0
	}
	return ps.info().dnsPort
}
