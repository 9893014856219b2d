package proxymodel

import "github.com/trellis-mesh/trellis/internal/policy"

// PolicyItem is one policy resource of the mesh, as package policy and the
// policy kinds' packages read it.
type PolicyItem = policy.Policy

// Applier fills in what one policy kind decides for a proxy, such as the
// Permissions of its inbounds (package policy/meshtrafficpermission).
// Index.Build runs the appliers given to NewIndex, in order, once the
// proxy's inbounds and outbounds are built; they read the kind's policies
// from MeshSnapshot.Policies. Appliers must be pure and safe for
// concurrent use: proxies of one index may be built concurrently. What an
// applier decides may depend only on the snapshot's Mesh, MeshSpec and
// Policies and on the proxy it is given (dp and p): Index.Fingerprint
// hashes those, and the control plane skips proxies whose fingerprint did
// not change.
type Applier interface {
	Apply(snap *MeshSnapshot, dp NamedDataplane, p *Proxy) error
}

// apply runs the index's appliers on the model of the named proxy.
func (ix *Index) apply(name string, p *Proxy) (*Proxy, error) {
	dp := ix.named[name]
	for _, a := range ix.appliers {
		if err := a.Apply(ix.snap, dp, p); err != nil {
			return nil, err
		}
	}
	return p, nil
}
