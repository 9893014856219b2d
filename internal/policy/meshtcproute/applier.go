// Package meshtcproute matches and merges the MeshTCPRoute policies of one
// proxy into the weighted backends of its outbounds
// (proxymodel.Outbound.TCPBackends), as Kuma 2.14 does: the first rule of
// every to[] item naming a MeshService is merged over the policies that
// select the proxy, least to most specific (JSON Merge Patch, so the most
// specific backendRefs win as a whole).
//
// A MeshHTTPRoute for the same destination takes priority: outbounds that
// got HTTP routes (package meshhttproute, whose applier must run first)
// are left alone. An http, http2 or grpc outbound routed by a MeshTCPRoute
// only becomes a TCP outbound (tcp_proxy), as in Kuma.
package meshtcproute

import (
	"encoding/json"
	"fmt"

	api "github.com/trellis-mesh/trellis/api/policy/meshtcproute"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/policy/meshhttproute"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// Kind is the policy kind this package applies.
const Kind = "MeshTCPRoute"

// Applier fills the TCP backends of a proxy's outbounds from the mesh's
// MeshTCPRoute policies.
type Applier struct{}

var _ proxymodel.Applier = Applier{}

// Apply implements proxymodel.Applier.
func (Applier) Apply(snap *proxymodel.MeshSnapshot, dp proxymodel.NamedDataplane, p *proxymodel.Proxy) error {
	items := snap.Policies[Kind]
	if len(items) == 0 || len(p.Outbounds) == 0 {
		return nil
	}
	confs, err := Merged(dp, items)
	if err != nil {
		return fmt.Errorf("dataplane %q: %s: %w", dp.Name, Kind, err)
	}
	for i := range p.Outbounds {
		out := &p.Outbounds[i]
		conf, ok := confs[out.Service]
		if !ok || out.HTTPRoutes != nil {
			continue
		}
		bs := meshhttproute.Backends(out, conf.BackendRefs)
		if len(bs) == 0 {
			continue
		}
		out.TCPBackends = bs
		if meshhttproute.IsHTTP(out.Protocol) {
			out.Protocol = mesh.ProtocolTCP
		}
	}
	return nil
}

// Merged returns, per destination service, the merged rule of the
// policies of items that select dp.
func Merged(dp proxymodel.NamedDataplane, items []proxymodel.PolicyItem) (map[string]api.RuleConf, error) {
	m, err := policy.Match(policy.Dataplane{Name: dp.Name, Labels: dp.Labels, Spec: dp.Spec}, items)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]proxymodel.PolicyItem, len(items))
	for _, it := range items {
		byName[it.Name] = it
	}
	confs := map[string][]json.RawMessage{}
	var order []string
	for _, ref := range m.Policies {
		it, ok := byName[ref.Name]
		if !ok {
			continue
		}
		spec, err := decodeSpec(it.Spec)
		if err != nil {
			return nil, fmt.Errorf("policy %q: %w", ref.Name, err)
		}
		for _, to := range spec.To {
			if to.TargetRef.Kind != common.MeshService || to.TargetRef.Name == "" || len(to.Rules) == 0 {
				continue
			}
			raw, err := json.Marshal(to.Rules[0].Default)
			if err != nil {
				return nil, fmt.Errorf("policy %q: encoding a rule: %w", ref.Name, err)
			}
			svc := to.TargetRef.Name
			if _, seen := confs[svc]; !seen {
				order = append(order, svc)
			}
			confs[svc] = append(confs[svc], raw)
		}
	}
	out := make(map[string]api.RuleConf, len(order))
	for _, svc := range order {
		merged, err := policy.Merge(confs[svc]...)
		if err != nil {
			return nil, fmt.Errorf("rules to %s: %w", svc, err)
		}
		if out[svc], err = policy.Decode[api.RuleConf](merged); err != nil {
			return nil, fmt.Errorf("rules to %s: %w", svc, err)
		}
	}
	return out, nil
}

func decodeSpec(spec any) (*api.Spec, error) {
	if s, ok := spec.(*api.Spec); ok && s != nil {
		return s, nil
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encoding the spec: %w", err)
	}
	var s api.Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("reading the spec: %w", err)
	}
	return &s, nil
}
