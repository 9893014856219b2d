package build

import (
	"bytes"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

func allow(p proxymodel.Principal, origins ...string) proxymodel.PermissionRule {
	return proxymodel.PermissionRule{Principal: p, Action: proxymodel.ActionAllow, Origins: origins}
}

func deny(p proxymodel.Principal, origins ...string) proxymodel.PermissionRule {
	return proxymodel.PermissionRule{Principal: p, Action: proxymodel.ActionDeny, Origins: origins}
}

func shadowDeny(p proxymodel.Principal, origins ...string) proxymodel.PermissionRule {
	return proxymodel.PermissionRule{Principal: p, Action: proxymodel.ActionAllowWithShadowDeny, Origins: origins}
}

func exact(svc string) proxymodel.Principal {
	return proxymodel.Principal{Exact: proxymodel.SpiffeID("default", svc)}
}

var anyClient = proxymodel.Principal{Any: true}

// rbacCases are the permissions of the golden files testdata/rbac-*.golden.json.
var rbacCases = map[string]*proxymodel.Permissions{
	"deny-all":   {},
	"allow-all":  {Rules: []proxymodel.PermissionRule{allow(anyClient, "allow-all")}},
	"deny-one":   {Rules: []proxymodel.PermissionRule{deny(exact("web"), "allow-all", "deny-web"), allow(anyClient, "allow-all")}},
	"allow-some": {Rules: []proxymodel.PermissionRule{allow(exact("ops"), "ops"), deny(anyClient, "ops")}},
	"mixed": {Rules: []proxymodel.PermissionRule{
		deny(proxymodel.Principal{Prefix: "spiffe://default/legacy-"}, "identities"),
		deny(exact("cron"), "deny-cron"),
		allow(exact("web"), "web"),
		shadowDeny(exact("batch"), "identities"),
		shadowDeny(anyClient, "trial"),
		allow(proxymodel.Principal{Prefix: "spiffe://default/"}, "identities"),
	}},
}

// TestRBACGolden renders the network and HTTP RBAC filters of each case.
func TestRBACGolden(t *testing.T) {
	p := &proxymodel.Proxy{Mesh: "default", MTLS: &proxymodel.MTLS{Mode: proxymodel.MTLSStrict, TrustDomain: "default"}}
	for name, perms := range rbacCases {
		t.Run(name, func(t *testing.T) {
			in := &proxymodel.Inbound{Address: "10.0.0.2", Port: 8080, Service: "backend", Permissions: perms}
			nf, err := rbacNetworkFilter(p, in)
			if err != nil {
				t.Fatal(err)
			}
			hf, err := rbacHTTPFilter(p, in)
			if err != nil {
				t.Fatal(err)
			}
			got := renderJSON(t, nf, hf)
			again, _ := rbacNetworkFilter(p, in)
			if !proto.Equal(nf, again) {
				t.Fatal("two builds differ")
			}
			rbacGolden(t, filepath.Join("testdata", "rbac-"+name+".golden.json"), got)
		})
	}
}

func TestRBACOnlyWithMTLS(t *testing.T) {
	p := &proxymodel.Proxy{Mesh: "default"}
	in := &proxymodel.Inbound{Address: "10.0.0.2", Port: 8080, Permissions: rbacCases["allow-all"]}
	nf, err := rbacNetworkFilter(p, in)
	if err != nil || nf != nil {
		t.Fatalf("network filter without mTLS = %v, %v; want none", nf, err)
	}
	hf, err := rbacHTTPFilter(p, in)
	if err != nil || hf != nil {
		t.Fatalf("HTTP filter without mTLS = %v, %v; want none", hf, err)
	}
	// With mTLS, missing permissions deny everything.
	p.MTLS = &proxymodel.MTLS{Mode: proxymodel.MTLSStrict}
	rules, shadow := rbacRules(nil)
	if rules.Action != rbacv3.RBAC_ALLOW || len(rules.Policies) != 0 || shadow != nil {
		t.Fatalf("rules for nil permissions = %v, %v; want ALLOW with no policy", rules, shadow)
	}
}

// TestRBACIsFirstMatch checks on random permissions that the RBAC rules
// allow exactly the clients whose first matching rule allows them, and the
// shadow rules deny exactly those whose first match is AllowWithShadowDeny.
func TestRBACIsFirstMatch(t *testing.T) {
	pool := []proxymodel.Principal{
		anyClient, exact("a"), exact("b"), exact("ab"),
		{Prefix: "spiffe://default/a"}, {Prefix: "spiffe://default/b"}, {Prefix: "spiffe://other/"},
	}
	ids := []string{"spiffe://default/a", "spiffe://default/b", "spiffe://default/ab", "spiffe://default/c", "spiffe://other/x"}
	actions := []string{proxymodel.ActionAllow, proxymodel.ActionDeny, proxymodel.ActionAllowWithShadowDeny}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		perms := &proxymodel.Permissions{}
		for range rng.IntN(6) {
			perms.Rules = append(perms.Rules, proxymodel.PermissionRule{
				Principal: pool[rng.IntN(len(pool))], Action: actions[rng.IntN(len(actions))],
			})
		}
		rules, shadow := rbacRules(perms)
		for _, id := range ids {
			first := proxymodel.ActionDeny
			for _, r := range perms.Rules {
				if principalMatches(r.Principal, id) {
					first = r.Action
					break
				}
			}
			wantAllowed := first != proxymodel.ActionDeny
			if got := rbacMatches(rules, id); got != wantAllowed {
				t.Fatalf("%s under %+v: allowed = %v, want %v\nrules: %v", id, perms.Rules, got, wantAllowed, rules)
			}
			wantShadow := first == proxymodel.ActionAllowWithShadowDeny
			if got := shadow != nil && rbacMatches(shadow, id); got != wantShadow {
				t.Fatalf("%s under %+v: shadow denied = %v, want %v", id, perms.Rules, got, wantShadow)
			}
		}
	}
}

func principalMatches(p proxymodel.Principal, id string) bool {
	switch {
	case p.Any:
		return true
	case p.Exact != "":
		return id == p.Exact
	}
	return strings.HasPrefix(id, p.Prefix)
}

// rbacMatches reports whether some policy of rules matches a client.
func rbacMatches(rules *rbacv3.RBAC, id string) bool {
	for _, pol := range rules.Policies {
		for _, pr := range pol.Principals {
			if evalPrincipal(pr, id) {
				return true
			}
		}
	}
	return false
}

func evalPrincipal(p *rbacv3.Principal, id string) bool {
	switch x := p.Identifier.(type) {
	case *rbacv3.Principal_Any:
		return x.Any
	case *rbacv3.Principal_NotId:
		return !evalPrincipal(x.NotId, id)
	case *rbacv3.Principal_AndIds:
		for _, q := range x.AndIds.Ids {
			if !evalPrincipal(q, id) {
				return false
			}
		}
		return true
	case *rbacv3.Principal_OrIds:
		for _, q := range x.OrIds.Ids {
			if evalPrincipal(q, id) {
				return true
			}
		}
		return false
	case *rbacv3.Principal_Authenticated_:
		m := x.Authenticated.PrincipalName
		if e := m.GetExact(); e != "" {
			return id == e
		}
		return strings.HasPrefix(id, m.GetPrefix())
	}
	panic("unexpected principal")
}

func renderJSON(t *testing.T, msgs ...proto.Message) []byte {
	t.Helper()
	var generic []any
	for _, m := range msgs {
		js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(js, &v); err != nil {
			t.Fatal(err)
		}
		generic = append(generic, v)
	}
	out, err := json.MarshalIndent(generic, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// rbacGolden compares with a golden file, rewriting it under -update (the
// flag the package's external tests define).
func rbacGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/xds/build -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs; if the change is intended run go test ./internal/xds/build -update\ngot:\n%s", path, got)
	}
}
