// Package rbac implements the authorization of Envoy's RBAC filters
// (envoy.filters.network.rbac and envoy.filters.http.rbac) over the
// identity of the downstream peer: policies of config.rbac.v3.RBAC whose
// principals are any, authenticated{principal_name}, and_ids, or_ids and
// not_id, and whose permissions are any. The enforced rules decide; the
// shadow rules are evaluated, logged and counted only.
package rbac

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/strmatch"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/peer"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// maxDepth bounds the nesting of and_ids/or_ids/not_id.
const maxDepth = 32

// Engine is a compiled config.rbac.v3.RBAC, immutable once built.
type Engine struct {
	allow    bool // action ALLOW; else DENY
	policies []policy
}

type policy struct {
	name       string
	principals []principal
}

// Compile checks and compiles rules. Policies are evaluated in name order.
func Compile(rules *rbacv3.RBAC) (*Engine, error) {
	e := &Engine{}
	switch a := rules.GetAction(); a {
	case rbacv3.RBAC_ALLOW:
		e.allow = true
	case rbacv3.RBAC_DENY:
	default:
		return nil, fmt.Errorf("action %s is not supported (ALLOW or DENY)", a)
	}
	for _, name := range slices.Sorted(maps.Keys(rules.GetPolicies())) {
		p := rules.GetPolicies()[name]
		path := fmt.Sprintf("policies[%q]", name)
		if len(p.GetPermissions()) == 0 {
			return nil, fmt.Errorf("%s.permissions: at least one permission is required", path)
		}
		for i, perm := range p.GetPermissions() {
			if !perm.GetAny() {
				return nil, fmt.Errorf("%s.permissions[%d]: only any: true is supported", path, i)
			}
		}
		if len(p.GetPrincipals()) == 0 {
			return nil, fmt.Errorf("%s.principals: at least one principal is required", path)
		}
		cp := policy{name: name}
		for i, pr := range p.GetPrincipals() {
			c, err := compilePrincipal(pr, 0)
			if err != nil {
				return nil, fmt.Errorf("%s.principals[%d]: %w", path, i, err)
			}
			cp.principals = append(cp.principals, c)
		}
		e.policies = append(e.policies, cp)
	}
	return e, nil
}

// Allowed reports whether the rules let id through, and the name of the
// policy that matched ("" when none did).
func (e *Engine) Allowed(id *peer.Identity) (bool, string) {
	for i := range e.policies {
		if e.policies[i].matches(id) {
			return e.allow, e.policies[i].name
		}
	}
	return !e.allow, ""
}

func (p *policy) matches(id *peer.Identity) bool {
	for i := range p.principals {
		if p.principals[i].matches(id) {
			return true
		}
	}
	return false
}

type principalKind uint8

const (
	kindAny principalKind = iota
	kindAuthenticated
	kindAnd
	kindOr
	kindNot
)

// principal is a compiled Principal.
type principal struct {
	kind principalKind
	name *strmatch.Matcher // authenticated.principal_name; nil: any authenticated peer
	ids  []principal       // and_ids, or_ids; not_id is ids[0]
}

func compilePrincipal(p *rbacv3.Principal, depth int) (principal, error) {
	if depth > maxDepth {
		return principal{}, fmt.Errorf("principals nested deeper than %d", maxDepth)
	}
	switch id := p.GetIdentifier().(type) {
	case *rbacv3.Principal_Any:
		if !id.Any {
			return principal{}, errors.New("any must be true")
		}
		return principal{kind: kindAny}, nil
	case *rbacv3.Principal_Authenticated_:
		out := principal{kind: kindAuthenticated}
		if pn := id.Authenticated.GetPrincipalName(); pn != nil {
			m, err := strmatch.Compile(pn)
			if err != nil {
				return out, fmt.Errorf("authenticated.principal_name: %w", err)
			}
			out.name = &m
		}
		return out, nil
	case *rbacv3.Principal_AndIds:
		return compileSet(kindAnd, "and_ids", id.AndIds, depth)
	case *rbacv3.Principal_OrIds:
		return compileSet(kindOr, "or_ids", id.OrIds, depth)
	case *rbacv3.Principal_NotId:
		inner, err := compilePrincipal(id.NotId, depth+1)
		if err != nil {
			return principal{}, fmt.Errorf("not_id: %w", err)
		}
		return principal{kind: kindNot, ids: []principal{inner}}, nil
	case nil:
		return principal{}, errors.New("an identifier is required")
	default:
		return principal{}, fmt.Errorf("principal %T is not supported", id)
	}
}

func compileSet(kind principalKind, field string, set *rbacv3.Principal_Set, depth int) (principal, error) {
	out := principal{kind: kind}
	if len(set.GetIds()) == 0 {
		return out, fmt.Errorf("%s.ids: at least one principal is required", field)
	}
	for i, p := range set.GetIds() {
		c, err := compilePrincipal(p, depth+1)
		if err != nil {
			return out, fmt.Errorf("%s.ids[%d]: %w", field, i, err)
		}
		out.ids = append(out.ids, c)
	}
	return out, nil
}

func (p *principal) matches(id *peer.Identity) bool {
	switch p.kind {
	case kindAny:
		return true
	case kindAuthenticated:
		return authenticated(p.name, id)
	case kindAnd:
		for i := range p.ids {
			if !p.ids[i].matches(id) {
				return false
			}
		}
		return true
	case kindOr:
		for i := range p.ids {
			if p.ids[i].matches(id) {
				return true
			}
		}
		return false
	default: // kindNot
		return !p.ids[0].matches(id)
	}
}

// authenticated matches a peer with a verified certificate whose URI SANs,
// else DNS SANs, else subject match name (as Envoy's Authenticated does).
// A plaintext peer never matches.
func authenticated(name *strmatch.Matcher, id *peer.Identity) bool {
	if id == nil || !id.Authenticated {
		return false
	}
	if name == nil {
		return true
	}
	for _, u := range id.URIs {
		if name.Match(u) {
			return true
		}
	}
	for _, d := range id.DNSNames {
		if name.Match(d) {
			return true
		}
	}
	return name.Match(id.Subject)
}

// Filter is a built RBAC filter: the enforced rules (nil: everything is
// allowed), the shadow rules (nil: none) and their metrics.
type Filter struct {
	rules  *Engine
	shadow *Engine
	log    *slog.Logger

	allowed       *stats.Counter
	denied        *stats.Counter
	shadowAllowed *stats.Counter
	shadowDenied  *stats.Counter
}

// NewFilter compiles the rules and shadow rules of an RBAC filter.
// Metrics are named <prefix>rbac.<metric>, prefix being joined with a dot
// when it does not end in one (Envoy's statPrefixJoin).
func NewFilter(rules, shadow *rbacv3.RBAC, prefix string, reg stats.Registry, log *slog.Logger) (*Filter, error) {
	f := &Filter{log: log}
	var err error
	if rules != nil {
		if f.rules, err = Compile(rules); err != nil {
			return nil, fmt.Errorf("rules: %w", err)
		}
	}
	if shadow != nil {
		if f.shadow, err = Compile(shadow); err != nil {
			return nil, fmt.Errorf("shadow_rules: %w", err)
		}
	}
	if prefix != "" && !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	sc := stats.NewScope(reg, prefix+"rbac")
	f.allowed = sc.Counter("allowed")
	f.denied = sc.Counter("denied")
	f.shadowAllowed = sc.Counter("shadow_allowed")
	f.shadowDenied = sc.Counter("shadow_denied")
	return f, nil
}

// Check evaluates the filter for a peer (nil: plaintext): the shadow
// rules are counted and a shadow deny logged; the result is whether the
// enforced rules allow the connection or request.
func (f *Filter) Check(id *peer.Identity) bool {
	if f.shadow != nil {
		if ok, policy := f.shadow.Allowed(id); ok {
			f.shadowAllowed.Inc()
		} else {
			f.shadowDenied.Inc()
			f.log.Info("shadow deny", "principal", id.Principal(), "authenticated", id != nil && id.Authenticated, "policy", policy)
		}
	}
	if f.rules == nil {
		return true
	}
	ok, policy := f.rules.Allowed(id)
	if ok {
		f.allowed.Inc()
	} else {
		f.denied.Inc()
		f.log.Debug("rbac deny", "principal", id.Principal(), "policy", policy)
	}
	return ok
}
