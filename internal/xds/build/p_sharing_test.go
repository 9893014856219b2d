package build_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// policiesHalf keeps what inbound hooks (inbound true) or outbound hooks
// may read of the policies, as the control plane splits a proxy
// (internal/xds/server/share.go).
func policiesHalf(all map[string]*proxymodel.Matched, inbound bool) map[string]*proxymodel.Matched {
	out := map[string]*proxymodel.Matched{}
	for kind, m := range all {
		part := &proxymodel.Matched{Single: m.Single}
		if inbound {
			part.Inbounds = m.Inbounds
		} else {
			part.To = m.To
		}
		out[kind] = part
	}
	return out
}

// The traffic policy plugins respect plugin.go's read rules: building a
// proxy's inbounds and outbounds apart, each with only the policy part
// its hooks may read, gives exactly the resources of the whole build.
func TestPolicyPluginsBuildSharedParts(t *testing.T) {
	docs := timeoutPolicies + "\n---\n" + retryPolicies + "\n---\n" + circuitBreakerPolicies + "\n---\n" +
		healthCheckPolicies + "\n---\n" + lbPolicies + "\n---\n" + faultPolicies + "\n---\n" +
		rateLimitPolicies + "\n---\n" + tlsPolicies
	ix := policyIndex(t, policyItems(t, docs))
	for _, mode := range []string{"", proxymodel.MTLSStrict, proxymodel.MTLSPermissive} {
		for _, name := range []string{"web-1", "backend-1", "redis-1"} {
			p, err := ix.Build(name)
			if err != nil {
				t.Fatal(err)
			}
			if mode != "" {
				p.MTLS = testMTLS(t, mode, p.Services)
			}
			whole, err := build.Sidecar(p)
			if err != nil {
				t.Fatalf("%s %s: %v", mode, name, err)
			}
			in, out := *p, *p
			in.Outbounds, in.Policies = nil, policiesHalf(p.Policies, true)
			out.Inbounds, out.Name, out.Policies = nil, "", policiesHalf(p.Policies, false)
			inRes, err := build.Sidecar(&in)
			if err != nil {
				t.Fatal(err)
			}
			outRes, err := build.Sidecar(&out)
			if err != nil {
				t.Fatal(err)
			}
			got := resourcesByName(inRes)
			for k, v := range resourcesByName(outRes) {
				got[k] = v
			}
			want := resourcesByName(whole)
			if len(got) != len(want) {
				t.Fatalf("%s %s: the parts have %d resources, the whole build %d", mode, name, len(got), len(want))
			}
			for k, w := range want {
				if !proto.Equal(got[k], w) {
					t.Errorf("%s %s: %s differs between the parts and the whole build", mode, name, k)
				}
			}
		}
	}
}

func resourcesByName(r *build.Resources) map[string]proto.Message {
	out := map[string]proto.Message{}
	for typ, list := range r.ByType() {
		for _, x := range list {
			m := x.(proto.Message)
			var key string
			switch v := x.(type) {
			case interface{ GetClusterName() string }:
				key = string(typ) + " " + v.GetClusterName()
			case interface{ GetName() string }:
				key = string(typ) + " " + v.GetName()
			}
			out[key] = m
		}
	}
	return out
}
