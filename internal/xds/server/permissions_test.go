package server_test

import (
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	httprbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
)

// inboundRBAC returns the enforced rules of the HTTP RBAC filter of the
// inbound listener name in an LDS response (nil when it has none).
func inboundRBAC(t *testing.T, resp *discoveryv3.DiscoveryResponse, name string) *rbacv3.RBAC {
	t.Helper()
	for _, a := range resp.Resources {
		var l listenerv3.Listener
		if err := a.UnmarshalTo(&l); err != nil {
			t.Fatal(err)
		}
		if l.Name != name {
			continue
		}
		var m hcmv3.HttpConnectionManager
		if err := l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(&m); err != nil {
			t.Fatal(err)
		}
		for _, f := range m.HttpFilters {
			if f.Name == wellknown.HTTPRoleBasedAccessControl {
				var r httprbacv3.RBAC
				if err := f.GetTypedConfig().UnmarshalTo(&r); err != nil {
					t.Fatal(err)
				}
				return r.Rules
			}
		}
	}
	return nil
}

// With mTLS on, an inbound with no MeshTrafficPermission denies everyone;
// applying one pushes rules that let its clients in.
func TestMeshTrafficPermissionIsPushed(t *testing.T) {
	c := startCP(t, time.Minute)
	c.apply(t, mtlsMesh("1h"))
	ads := connect(t, c, "backend-1", 18091)
	const inbound = "inbound:127.0.0.1:18091"

	rules := inboundRBAC(t, ads.subscribe(resourcev3.ListenerType), inbound)
	if rules == nil || rules.Action != rbacv3.RBAC_ALLOW || len(rules.Policies) != 0 {
		t.Fatalf("rules without a MeshTrafficPermission = %v, want ALLOW with no policy (deny all)", rules)
	}

	c.apply(t, `type: MeshTrafficPermission
mesh: default
name: allow-web
spec:
  targetRef:
    kind: MeshService
    name: backend
  from:
  - targetRef:
      kind: MeshService
      name: web
    default:
      action: Allow
`)
	rules = inboundRBAC(t, ads.next(resourcev3.ListenerType, nil), inbound)
	pol := rules.GetPolicies()["000:allow-web"]
	if len(rules.GetPolicies()) != 1 || pol == nil ||
		pol.Principals[0].GetAuthenticated().GetPrincipalName().GetExact() != "spiffe://default/web" {
		t.Fatalf("rules after the MeshTrafficPermission = %v", rules)
	}
}
