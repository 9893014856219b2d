package server

import (
	"context"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// loadVIPs gives the snapshot its services' virtual IPs, allocating those
// of new services (once per recompute of the mesh, never per proxy). An
// allocation that fails is logged: the services it left out get no VIP
// until a later recompute, the rest of the mesh is built as usual.
func (c *meshCache) loadVIPs(ctx context.Context, snap *proxymodel.MeshSnapshot) {
	if c.vips == nil {
		return
	}
	table, err := c.vips.Sync(ctx, snap.Mesh, proxymodel.SnapshotServices(snap))
	if err != nil && ctx.Err() == nil {
		c.vips.Logger().Error("allocating virtual IPs", "mesh", snap.Mesh, "err", err)
	}
	snap.VIPs = table
}
