// Package meshtrafficpermission computes the authorization of each inbound
// of a proxy from the MeshTrafficPermission policies of its mesh: ordered,
// first-match rules of client identity (SPIFFE ID) → action, which the xDS
// builder turns into Envoy RBAC filters when mTLS is on.
//
// # From rules
//
// The from[] sections of the policies selecting an inbound are merged by
// package policy into client rules, most specific first; each becomes one
// permission rule with the merged action:
//
//   - Mesh (the empty subset) → Principal{Any}: every client of the mesh;
//   - a subset that is exactly {kuma.io/service: S} (MeshService S, or a
//     MeshSubset/MeshServiceSubset with that tag alone) →
//     Principal{Exact "spiffe://<mesh>/S"}.
//
// A client's workload certificate proves only its kuma.io/service, so a
// rule for a subset with any other tag (version, zone, team...) cannot be
// enforced: it is skipped and a note says so. Clients of such a subset then
// fall to the next, less specific rule that matches them.
//
// # Identity rules
//
// The rules[] items (clients by SPIFFE ID, Exact or Prefix) of the policies
// selecting an inbound are not merged: every listed match counts. Their
// deny matches come first, then the from rules, then their
// allowWithShadowDeny matches, then their allow matches. So a deny anywhere
// wins, and an identity allow only reaches clients the from rules say
// nothing about.
//
// An inbound no policy selects gets empty Permissions: everything is denied
// (with mTLS on, traffic needs a MeshTrafficPermission, as in Kuma).
package meshtrafficpermission

import (
	"fmt"

	api "github.com/trellis-mesh/trellis/api/policy/meshtrafficpermission"
	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// Kind is the policy kind this package reads.
const Kind = "MeshTrafficPermission"

// Result is the authorization of every inbound of one proxy.
type Result struct {
	// Matched is what package policy made of the policies.
	Matched *policy.Matched
	// Inbounds are in the order of Matched.Inbounds.
	Inbounds []Inbound
}

// Inbound is the authorization of one inbound.
type Inbound struct {
	// Index is the inbound's position in networking.inbound; Address and
	// Port are where the proxy listens for it.
	Index   int
	Address string
	Port    uint32
	// Permissions are never nil; no rules means everything is denied.
	Permissions *proxymodel.Permissions
	// Notes say which rules were skipped and why.
	Notes []string
}

// Compute returns the permissions of each inbound of dp, given every
// MeshTrafficPermission of its mesh meshName.
func Compute(meshName string, dp policy.Dataplane, policies []policy.Policy) (*Result, error) {
	m, err := policy.Match(dp, policies)
	if err != nil {
		return nil, fmt.Errorf("matching MeshTrafficPermissions: %w", err)
	}
	return computeMatched(meshName, m)
}

// computeMatched returns the permissions of each inbound of a proxy from
// what its mesh's MeshTrafficPermissions say about it.
func computeMatched(meshName string, m *policy.Matched) (*Result, error) {
	res := &Result{Matched: m}
	for i := range m.Inbounds {
		in := &m.Inbounds[i]
		perms, notes, err := Permissions(meshName, in)
		if err != nil {
			return nil, fmt.Errorf("inbound %s:%d: %w", in.Address, in.Port, err)
		}
		res.Inbounds = append(res.Inbounds, Inbound{Index: in.Index, Address: in.Address, Port: in.Port, Permissions: perms, Notes: notes})
	}
	return res, nil
}

// Permissions turns the matched policies of one inbound into first-match
// rules (see the package documentation), with notes on what was skipped.
func Permissions(meshName string, in *policy.Inbound) (*proxymodel.Permissions, []string, error) {
	var deny, shadow, allow []proxymodel.PermissionRule
	for _, e := range in.Rules {
		conf, err := policy.Decode[api.RuleConf](e.Conf)
		if err != nil {
			return nil, nil, fmt.Errorf("policy %q rules[%d]: %w", e.Policy, e.Index, err)
		}
		origins := []string{e.Policy}
		deny = appendMatches(deny, conf.Deny, proxymodel.ActionDeny, origins)
		shadow = appendMatches(shadow, conf.AllowWithShadowDeny, proxymodel.ActionAllowWithShadowDeny, origins)
		allow = appendMatches(allow, conf.Allow, proxymodel.ActionAllow, origins)
	}
	from, notes, err := fromRules(meshName, in.From)
	if err != nil {
		return nil, nil, err
	}
	perms := &proxymodel.Permissions{}
	for _, group := range [][]proxymodel.PermissionRule{deny, from, shadow, allow} {
		perms.Rules = append(perms.Rules, group...)
	}
	return perms, notes, nil
}

func appendMatches(rules []proxymodel.PermissionRule, matches []api.Match, action string, origins []string) []proxymodel.PermissionRule {
	for _, m := range matches {
		if m.SpiffeID == nil {
			continue
		}
		var p proxymodel.Principal
		if m.SpiffeID.Type == api.Prefix {
			p.Prefix = m.SpiffeID.Value
		} else {
			p.Exact = m.SpiffeID.Value
		}
		rules = append(rules, proxymodel.PermissionRule{Principal: p, Action: action, Origins: origins})
	}
	return rules
}

// fromRules converts merged client rules, skipping subsets a certificate
// cannot prove.
func fromRules(meshName string, rules policy.Rules) ([]proxymodel.PermissionRule, []string, error) {
	typed, err := policy.Typed[api.Conf](rules)
	if err != nil {
		return nil, nil, err
	}
	var out []proxymodel.PermissionRule
	var notes []string
	for _, r := range typed {
		if r.Conf.Action == nil || *r.Conf.Action == "" {
			notes = append(notes, fmt.Sprintf("clients %s (from %v) have no action: skipped", r.Subset, r.Origins))
			continue
		}
		action := string(*r.Conf.Action)
		var p proxymodel.Principal
		switch svc := r.Subset.Service(); {
		case len(r.Subset) == 0:
			p.Any = true
		case len(r.Subset) == 1 && svc != "":
			p.Exact = proxymodel.SpiffeID(meshName, svc)
		default:
			notes = append(notes, fmt.Sprintf("clients %s (%s, from %v) are skipped: a certificate proves only kuma.io/service", r.Subset, action, r.Origins))
			continue
		}
		out = append(out, proxymodel.PermissionRule{Principal: p, Action: action, Origins: r.Origins})
	}
	return out, notes, nil
}
