// Package meshtls applies MeshTLS policies to proxy models: besides the
// matching every traffic policy gets (proxymodel.MatchApplier), it sets
// each inbound's mTLS mode and the mesh-wide conf outbound TLS contexts
// read.
package meshtls

import (
	"encoding/json"
	"fmt"

	api "github.com/trellis-mesh/trellis/api/policy/meshtls"
	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// Kind is the policy kind this package applies.
const Kind = "MeshTLS"

// Applier matches MeshTLS policies into Proxy.Policies[Kind] and then:
//   - sets Inbound.MTLSMode from the inbound's merged conf (from[] rule for
//     the whole mesh, then rules[] entries), when it has a mode;
//   - sets Policies[Kind].Single to the first inbound's merged conf: the
//     API allows tlsVersion and tlsCiphers only in policies whose top-level
//     targetRef is Mesh, so that conf is the mesh's, which the builder's
//     outbound (upstream TLS) hook reads there.
type Applier struct{}

var _ proxymodel.Applier = Applier{}

// Apply implements proxymodel.Applier.
func (Applier) Apply(snap *proxymodel.MeshSnapshot, dp proxymodel.NamedDataplane, p *proxymodel.Proxy) error {
	if err := (proxymodel.MatchApplier{Kind: Kind}).Apply(snap, dp, p); err != nil {
		return err
	}
	m := p.Policies[Kind]
	for i := range p.Inbounds {
		in := &p.Inbounds[i]
		merged, err := inboundConf(p, in)
		if err != nil {
			return fmt.Errorf("dataplane %q: %s: %w", dp.Name, Kind, err)
		}
		if merged == nil {
			continue
		}
		if m.Single == nil {
			m.Single = &policy.Rule{Subset: policy.Subset{}, Conf: merged}
		}
		conf, err := policy.Decode[api.Conf](merged)
		if err != nil {
			return fmt.Errorf("dataplane %q: %s: inbound %s:%d: %w", dp.Name, Kind, in.Address, in.Port, err)
		}
		if conf.Mode != nil {
			switch *conf.Mode {
			case api.ModeStrict:
				in.MTLSMode = proxymodel.MTLSStrict
			case api.ModePermissive:
				in.MTLSMode = proxymodel.MTLSPermissive
			}
		}
	}
	return nil
}

// inboundConf merges the inbound's from[] rule for every client with its
// rules[] entries (nil when there are none).
func inboundConf(p *proxymodel.Proxy, in *proxymodel.Inbound) (json.RawMessage, error) {
	var confs []json.RawMessage
	if r := p.InboundRule(Kind, in); r != nil {
		confs = append(confs, r.Conf)
	}
	if im := p.InboundMatch(Kind, in); im != nil {
		for _, e := range im.Rules {
			confs = append(confs, e.Conf)
		}
	}
	if len(confs) == 0 {
		return nil, nil
	}
	return policy.Merge(confs...)
}
