package server

import (
	"context"
	"fmt"

	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/policy/meshhttproute"
	"github.com/trellis-mesh/trellis/internal/policy/meshtcproute"
	"github.com/trellis-mesh/trellis/internal/policy/meshtls"
	"github.com/trellis-mesh/trellis/internal/policy/meshtrafficpermission"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// policyAppliers fill the policy parts of proxy models, each from the
// mesh's policies of its kind (listed into MeshSnapshot.Policies).
var policyAppliers = []policyApplier{
	{meshtrafficpermission.Kind, meshtrafficpermission.Applier{}},
	// The traffic policies: the xDS builder's plugins read what they say
	// from Proxy.Policies (internal/xds/build/plugin.go).
	matched("MeshTimeout"),
	matched("MeshRetry"),
	matched("MeshCircuitBreaker"),
	matched("MeshHealthCheck"),
	matched("MeshFaultInjection"),
	matched("MeshRateLimit"),
	matched("MeshLoadBalancingStrategy"),
	matched("MeshAccessLog"),
	matched("MeshTrace"),
	matched("MeshMetric"),
	{meshtls.Kind, meshtls.Applier{}},
	{meshhttproute.Kind, meshhttproute.Applier{}}, // before MeshTCPRoute, which yields to it
	{meshtcproute.Kind, meshtcproute.Applier{}},
}

// matched lists a kind whose policies are matched and merged into
// Proxy.Policies[kind] by proxymodel.MatchApplier.
func matched(kind string) policyApplier {
	return policyApplier{kind, proxymodel.MatchApplier{Kind: kind}}
}

// policyApplier is the applier of one policy kind.
type policyApplier struct {
	kind    string
	applier proxymodel.Applier
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
