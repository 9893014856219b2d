package meshtrafficpermission

import (
	"fmt"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// Applier fills Inbound.Permissions of proxy models from the snapshot's
// MeshTrafficPermissions (MeshSnapshot.Policies[Kind]); give it to
// proxymodel.NewIndex. Every inbound gets Permissions, empty (deny all)
// when no policy selects it; they are enforced only when the proxy has
// MTLS.
type Applier struct{}

var _ proxymodel.Applier = Applier{}

// Apply implements proxymodel.Applier.
func (Applier) Apply(snap *proxymodel.MeshSnapshot, dp proxymodel.NamedDataplane, p *proxymodel.Proxy) error {
	// As Compute, with the snapshot's matcher (specs read once per snapshot).
	m, err := snap.Match(Kind, dp)
	if err != nil {
		return fmt.Errorf("dataplane %q: matching MeshTrafficPermissions: %w", dp.Name, err)
	}
	res, err := computeMatched(snap.Mesh, m)
	if err != nil {
		return fmt.Errorf("dataplane %q: %w", dp.Name, err)
	}
	for i := range p.Inbounds {
		in := &p.Inbounds[i]
		in.Permissions = &proxymodel.Permissions{}
		for _, r := range res.Inbounds {
			if r.Address == in.Address && r.Port == in.Port {
				in.Permissions = r.Permissions
				break
			}
		}
	}
	return nil
}
