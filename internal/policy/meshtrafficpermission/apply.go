package meshtrafficpermission

import (
	"fmt"
	"unsafe"

	"github.com/trellis-mesh/trellis/internal/policy"
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
	// As Compute, with the snapshot's matcher (specs read once per
	// snapshot), and the permissions of the rules proxies share computed
	// once per snapshot.
	m, err := snap.Match(Kind, dp)
	if err != nil {
		return fmt.Errorf("dataplane %q: matching MeshTrafficPermissions: %w", dp.Name, err)
	}
	perms := make([]*proxymodel.Permissions, len(m.Inbounds))
	for i := range m.Inbounds {
		in := &m.Inbounds[i]
		if perms[i], err = sharedPermissions(snap, in); err != nil {
			return fmt.Errorf("dataplane %q: inbound %s:%d: %w", dp.Name, in.Address, in.Port, err)
		}
	}
	for i := range p.Inbounds {
		in := &p.Inbounds[i]
		in.Permissions = &proxymodel.Permissions{}
		for j, r := range m.Inbounds {
			if r.Address == in.Address && r.Port == in.Port {
				in.Permissions = perms[j]
				break
			}
		}
	}
	return nil
}

// permissionsKey identifies the matched rules of an inbound by address
// (the Matcher shares them between proxies selected alike).
type permissionsKey struct {
	mesh   string
	from   *policy.Rule
	nFrom  int
	rules  *policy.Entry
	nRules int
}

// sharedPermissions returns Permissions of an inbound's matched rules,
// once per snapshot for the rules proxies share.
func sharedPermissions(snap *proxymodel.MeshSnapshot, in *policy.Inbound) (*proxymodel.Permissions, error) {
	key := permissionsKey{
		mesh: snap.Mesh,
		from: unsafe.SliceData(in.From), nFrom: len(in.From),
		rules: unsafe.SliceData(in.Rules), nRules: len(in.Rules),
	}
	v, err := snap.Memo(key, func() (any, error) {
		perms, _, err := Permissions(snap.Mesh, in)
		return perms, err
	})
	if err != nil {
		return nil, err
	}
	return v.(*proxymodel.Permissions), nil
}
