package build

import (
	"fmt"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	httprbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netrbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// Authorization of inbound traffic (docs/xds-contract.md, "mTLS, identity
// and authorization"): an inbound's Permissions are first-match rules of
// client principal → action. Envoy's RBAC has no first match, so each
// Allow or AllowWithShadowDeny rule becomes one ALLOW policy whose
// principal is the rule's, minus the principals of the Deny rules before it
// (and_ids / not_id / or_ids): a client is allowed when some allowing rule
// matches it and no earlier Deny rule does. No allowing rule means no
// policy, which denies everything. The shadow rules (action DENY, counted
// and logged, never enforced) hold the clients whose first matching rule
// is AllowWithShadowDeny: what a Deny there would refuse.

// rbacNetworkFilter returns the envoy.filters.network.rbac filter that
// authorizes connections to a TCP inbound, or nil when the proxy has no
// mTLS.
func rbacNetworkFilter(p *proxymodel.Proxy, in *proxymodel.Inbound) (*listenerv3.Filter, error) {
	if p.MTLS == nil {
		return nil, nil
	}
	rules, shadow := rbacRules(in.Permissions)
	cfg, err := anyDeterministic(&netrbacv3.RBAC{
		StatPrefix:  inboundListenerName(in.Address, in.Port) + ".",
		Rules:       rules,
		ShadowRules: shadow,
	})
	if err != nil {
		return nil, err
	}
	return &listenerv3.Filter{Name: wellknown.RoleBasedAccessControl, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: cfg}}, nil
}

// rbacHTTPFilter returns the envoy.filters.http.rbac filter that
// authorizes requests to an HTTP inbound, or nil when the proxy has no
// mTLS.
func rbacHTTPFilter(p *proxymodel.Proxy, in *proxymodel.Inbound) (*hcmv3.HttpFilter, error) {
	if p.MTLS == nil {
		return nil, nil
	}
	rules, shadow := rbacRules(in.Permissions)
	cfg, err := anyDeterministic(&httprbacv3.RBAC{Rules: rules, ShadowRules: shadow})
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpFilter{Name: wellknown.HTTPRoleBasedAccessControl, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: cfg}}, nil
}

// anyDeterministic packs m with map entries (RBAC policies) in key order,
// so that the same permissions give the same bytes (and config hash).
func anyDeterministic(m proto.Message) (*anypb.Any, error) {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		return nil, fmt.Errorf("packing %T: %w", m, err)
	}
	return a, nil
}

// rbacRules translates first-match permissions (nil: deny everything) into
// enforced ALLOW rules and DENY shadow rules (nil when no rule is
// AllowWithShadowDeny).
func rbacRules(perms *proxymodel.Permissions) (rules, shadow *rbacv3.RBAC) {
	rules = &rbacv3.RBAC{Action: rbacv3.RBAC_ALLOW, Policies: map[string]*rbacv3.Policy{}}
	if perms == nil {
		return rules, nil
	}
	shadowPolicies := map[string]*rbacv3.Policy{}
	for i, r := range perms.Rules {
		if r.Action != proxymodel.ActionAllow && r.Action != proxymodel.ActionAllowWithShadowDeny {
			continue
		}
		name := rbacPolicyName(i, r.Origins)
		// Enforced: allowed unless an earlier Deny rule matched.
		rules.Policies[name] = rbacPolicy(r.Principal, earlier(perms.Rules[:i], r.Principal, true))
		if r.Action == proxymodel.ActionAllowWithShadowDeny {
			// Shadow: denied when this is the first rule that matches.
			shadowPolicies[name] = rbacPolicy(r.Principal, earlier(perms.Rules[:i], r.Principal, false))
		}
	}
	if len(shadowPolicies) > 0 {
		shadow = &rbacv3.RBAC{Action: rbacv3.RBAC_DENY, Policies: shadowPolicies}
	}
	return rules, shadow
}

// rbacPolicyName names the policy of rule i: its position (zero-padded, so
// names sort in rule order) and the MeshTrafficPermissions it comes from.
func rbacPolicyName(i int, origins []string) string {
	name := fmt.Sprintf("%03d", i)
	if len(origins) > 0 {
		name += ":" + strings.Join(origins, ",")
	}
	return name
}

// earlier returns the principals of the rules before a rule with principal
// p that can match some of p's clients: only Deny rules when onlyDeny, else
// every rule.
func earlier(before []proxymodel.PermissionRule, p proxymodel.Principal, onlyDeny bool) []proxymodel.Principal {
	var out []proxymodel.Principal
	for _, r := range before {
		if onlyDeny && r.Action != proxymodel.ActionDeny {
			continue
		}
		if overlap(r.Principal, p) {
			out = append(out, r.Principal)
		}
	}
	return out
}

// overlap reports whether some SPIFFE ID could match both principals.
func overlap(a, b proxymodel.Principal) bool {
	switch {
	case a.Any || b.Any:
		return true
	case a.Exact != "" && b.Exact != "":
		return a.Exact == b.Exact
	case a.Exact != "":
		return strings.HasPrefix(a.Exact, b.Prefix)
	case b.Exact != "":
		return strings.HasPrefix(b.Exact, a.Prefix)
	}
	return strings.HasPrefix(a.Prefix, b.Prefix) || strings.HasPrefix(b.Prefix, a.Prefix)
}

// rbacPolicy matches any request from a client p matches and none of
// except match.
func rbacPolicy(p proxymodel.Principal, except []proxymodel.Principal) *rbacv3.Policy {
	principal := rbacPrincipal(p)
	if len(except) > 0 {
		var excluded *rbacv3.Principal
		if len(except) == 1 {
			excluded = rbacPrincipal(except[0])
		} else {
			ids := make([]*rbacv3.Principal, len(except))
			for i, e := range except {
				ids[i] = rbacPrincipal(e)
			}
			excluded = &rbacv3.Principal{Identifier: &rbacv3.Principal_OrIds{OrIds: &rbacv3.Principal_Set{Ids: ids}}}
		}
		not := &rbacv3.Principal{Identifier: &rbacv3.Principal_NotId{NotId: excluded}}
		if p.Any {
			principal = not
		} else {
			principal = &rbacv3.Principal{Identifier: &rbacv3.Principal_AndIds{AndIds: &rbacv3.Principal_Set{
				Ids: []*rbacv3.Principal{principal, not},
			}}}
		}
	}
	return &rbacv3.Policy{
		Permissions: []*rbacv3.Permission{{Rule: &rbacv3.Permission_Any{Any: true}}},
		Principals:  []*rbacv3.Principal{principal},
	}
}

// rbacPrincipal matches the peer certificate's URI SAN (its SPIFFE ID);
// Any matches every client, which the TLS context already limits to the
// mesh.
func rbacPrincipal(p proxymodel.Principal) *rbacv3.Principal {
	var m *matcherv3.StringMatcher
	switch {
	case p.Any:
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_Any{Any: true}}
	case p.Exact != "":
		m = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: p.Exact}}
	default:
		m = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: p.Prefix}}
	}
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{
		Authenticated: &rbacv3.Principal_Authenticated{PrincipalName: m},
	}}
}
