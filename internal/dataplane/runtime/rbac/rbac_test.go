package rbac_test

import (
	"log/slog"
	"strings"
	"testing"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/peer"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/rbac"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

func name(kind string, v string) *rbacv3.Principal {
	m := &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}
	if kind == "prefix" {
		m = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: v}}
	}
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{PrincipalName: m}}}
}

func anyP() *rbacv3.Principal { return &rbacv3.Principal{Identifier: &rbacv3.Principal_Any{Any: true}} }

func and(ids ...*rbacv3.Principal) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_AndIds{AndIds: &rbacv3.Principal_Set{Ids: ids}}}
}

func or(ids ...*rbacv3.Principal) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_OrIds{OrIds: &rbacv3.Principal_Set{Ids: ids}}}
}

func not(id *rbacv3.Principal) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_NotId{NotId: id}}
}

func rules(action rbacv3.RBAC_Action, policies map[string][]*rbacv3.Principal) *rbacv3.RBAC {
	out := &rbacv3.RBAC{Action: action, Policies: map[string]*rbacv3.Policy{}}
	for n, ps := range policies {
		out.Policies[n] = &rbacv3.Policy{Permissions: []*rbacv3.Permission{{Rule: &rbacv3.Permission_Any{Any: true}}}, Principals: ps}
	}
	return out
}

func id(uris ...string) *peer.Identity { return &peer.Identity{Authenticated: true, URIs: uris} }

func TestEngine(t *testing.T) {
	web, admin, other := id("spiffe://default/web"), id("spiffe://default/web-admin"), id("spiffe://other/web")
	var plain *peer.Identity
	noCert := &peer.Identity{}
	tests := []struct {
		name   string
		rules  *rbacv3.RBAC
		peer   *peer.Identity
		allow  bool
		policy string
	}{
		{"exact", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": {name("exact", "spiffe://default/web")}}), web, true, "a"},
		{"exact other", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": {name("exact", "spiffe://default/web")}}), admin, false, ""},
		{"prefix", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": {name("prefix", "spiffe://default/")}}), admin, true, "a"},
		{"prefix other mesh", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": {name("prefix", "spiffe://default/")}}), other, false, ""},
		{"plaintext vs authenticated", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": {name("prefix", "")}}), plain, false, ""},
		{"TLS without certificate", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": {name("prefix", "")}}), noCert, false, ""},
		{"plaintext vs any", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": {anyP()}}), plain, true, "a"},
		{"not authenticated name", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": {not(name("exact", "spiffe://default/web"))}}), plain, true, "a"},
		{"and/not", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": {and(name("prefix", "spiffe://default/web"), not(name("exact", "spiffe://default/web-admin")))}}), admin, false, ""},
		{"and/not match", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": {and(name("prefix", "spiffe://default/web"), not(name("exact", "spiffe://default/web-admin")))}}), web, true, "a"},
		{"or", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": {or(name("exact", "x"), name("exact", "spiffe://other/web"))}}), other, true, "a"},
		{"first policy by name", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"b": {anyP()}, "a": {anyP()}}), web, true, "a"},
		{"no policy", rules(rbacv3.RBAC_ALLOW, nil), web, false, ""},
		{"deny action", rules(rbacv3.RBAC_DENY, map[string][]*rbacv3.Principal{"a": {name("exact", "spiffe://default/web")}}), web, false, "a"},
		{"deny action no match", rules(rbacv3.RBAC_DENY, map[string][]*rbacv3.Principal{"a": {name("exact", "spiffe://default/web")}}), admin, true, ""},
		{"any URI SAN", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": {name("exact", "spiffe://default/b")}}), id("spiffe://default/a", "spiffe://default/b"), true, "a"},
	}
	for _, tc := range tests {
		e, err := rbac.Compile(tc.rules)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		allow, policy := e.Allowed(tc.peer)
		if allow != tc.allow || policy != tc.policy {
			t.Errorf("%s: Allowed = %v, %q; want %v, %q", tc.name, allow, policy, tc.allow, tc.policy)
		}
	}
}

func TestCompileRejects(t *testing.T) {
	deep := anyP()
	for range 40 {
		deep = not(deep)
	}
	for _, tc := range []struct {
		name  string
		rules *rbacv3.RBAC
		want  string
	}{
		{"empty and", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": {and()}}), `policies["a"].principals[0]: and_ids.ids: at least one principal is required`},
		{"any false", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": {{Identifier: &rbacv3.Principal_Any{}}}}), `policies["a"].principals[0]: any must be true`},
		{"no identifier", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": {or(&rbacv3.Principal{})}}), `policies["a"].principals[0]: or_ids.ids[0]: an identifier is required`},
		{"no principals", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": nil}), `policies["a"].principals: at least one principal is required`},
		{"too deep", rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": {deep}}), "nested deeper than 32"},
	} {
		_, err := rbac.Compile(tc.rules)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestFilterStatsAndShadow(t *testing.T) {
	st := stats.NewStore()
	allowWeb := rules(rbacv3.RBAC_ALLOW, map[string][]*rbacv3.Principal{"a": {name("exact", "spiffe://default/web")}})
	f, err := rbac.NewFilter(allowWeb, rules(rbacv3.RBAC_ALLOW, nil), "inbound_x", st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Check(id("spiffe://default/web")) || f.Check(nil) {
		t.Fatal("wrong decisions")
	}
	want := map[string]uint64{
		"inbound_x.rbac.allowed": 1, "inbound_x.rbac.denied": 1,
		"inbound_x.rbac.shadow_denied": 2, "inbound_x.rbac.shadow_allowed": 0,
	}
	snap := st.Snapshot()
	for k, v := range want {
		if snap[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, snap[k], v, snap)
		}
	}
	// No rules: everything is allowed, nothing counted as allowed.
	open, err := rbac.NewFilter(nil, nil, "p.", st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if !open.Check(nil) {
		t.Fatal("a filter without rules denied")
	}
	if _, ok := st.Snapshot()["p.rbac.allowed"]; !ok {
		t.Error("stat prefix ending in a dot: p.rbac.allowed missing")
	}
}
