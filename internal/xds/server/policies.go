package server

import (
	"context"
	"fmt"

	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/policy/meshtrafficpermission"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// policyAppliers fill the policy parts of proxy models, each from the
// mesh's policies of its kind (listed into MeshSnapshot.Policies).
var policyAppliers = []struct {
	kind    string
	applier proxymodel.Applier
}{
	{meshtrafficpermission.Kind, meshtrafficpermission.Applier{}},
}

// loadPolicies lists the mesh's policies of every kind an applier reads
// into snap.Policies, and returns the appliers for proxymodel.NewIndex.
func loadPolicies(ctx context.Context, mgr *manager.Manager, snap *proxymodel.MeshSnapshot) ([]proxymodel.Applier, error) {
	snap.Policies = map[string][]proxymodel.PolicyItem{}
	appliers := make([]proxymodel.Applier, 0, len(policyAppliers))
	for _, pa := range policyAppliers {
		d, ok := mgr.Registry().ByKind(pa.kind)
		if !ok {
			return nil, fmt.Errorf("the registry has no %s kind", pa.kind)
		}
		items, _, err := mgr.List(ctx, d, manager.ListOptions{Mesh: snap.Mesh})
		if err != nil {
			return nil, fmt.Errorf("listing the %ss of mesh %q: %w", pa.kind, snap.Mesh, err)
		}
		for _, it := range items {
			snap.Policies[pa.kind] = append(snap.Policies[pa.kind], proxymodel.PolicyItem{Name: it.Meta.Name, Labels: it.Meta.Labels, Spec: it.Spec})
		}
		appliers = append(appliers, pa.applier)
	}
	return appliers, nil
}
