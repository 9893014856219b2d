package build_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/allowlist"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// trafficKinds are the policy kinds whose plugins the traffic policy
// tests exercise; every test matches all of them, as the control plane
// does (internal/xds/server/policies.go).
var trafficKinds = []string{
	"MeshTimeout", "MeshRetry", "MeshCircuitBreaker", "MeshHealthCheck",
	"MeshFaultInjection", "MeshRateLimit", "MeshLoadBalancingStrategy", "MeshTLS",
}

// policyItems decodes YAML policy documents (separated by "---" lines)
// with the resource registry, so that they are validated as the API
// validates them.
func policyItems(t *testing.T, docs string) map[string][]proxymodel.PolicyItem {
	t.Helper()
	out := map[string][]proxymodel.PolicyItem{}
	for _, doc := range strings.Split(strings.TrimSpace(docs), "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		res, err := kinds.Registry().Decode([]byte(doc))
		if err != nil {
			t.Fatalf("policy %s: %v", doc, err)
		}
		out[res.Desc.Kind] = append(out[res.Desc.Kind], proxymodel.PolicyItem{Name: res.Meta.Name, Labels: res.Meta.Labels, Spec: res.Spec})
	}
	return out
}

// policyIndex indexes testdata/policies/mesh.yaml with the given policies, matched
// by proxymodel.MatchApplier as the control plane matches them.
func policyIndex(t *testing.T, policies map[string][]proxymodel.PolicyItem) *proxymodel.Index {
	t.Helper()
	snap := loadSnapshot(t, "testdata/policies/mesh.yaml")
	snap.Policies = policies
	appliers := make([]proxymodel.Applier, 0, len(trafficKinds))
	for _, k := range trafficKinds {
		appliers = append(appliers, proxymodel.MatchApplier{Kind: k})
	}
	return proxymodel.NewIndex(snap, appliers...)
}

// buildPolicies builds the named proxy of testdata/policies/mesh.yaml under the
// given policy documents; mtlsMode, when not empty, turns mTLS on.
func buildPolicies(t *testing.T, docs, proxy, mtlsMode string) (*build.Resources, error) {
	t.Helper()
	p, err := policyIndex(t, policyItems(t, docs)).Build(proxy)
	if err != nil {
		t.Fatal(err)
	}
	if mtlsMode != "" {
		p.MTLS = testMTLS(t, mtlsMode, p.Services)
	}
	return build.Sidecar(p)
}

// policyGolden builds each proxy under docs, checks every resource
// (checkResources) and compares the resources (secrets left
// out) with testdata/policies/<name>-<proxy>.golden.json.
func policyGolden(t *testing.T, name, docs, mtlsMode string, proxies ...string) {
	t.Helper()
	for _, proxy := range proxies {
		r, err := buildPolicies(t, docs, proxy, mtlsMode)
		if err != nil {
			t.Fatalf("%s: %v", proxy, err)
		}
		checkResources(t, proxy, r)
		r.Secrets = nil
		golden(t, "policies/"+name+"-"+proxy, dump(t, r))
	}
}

// policyError builds proxy under docs and wants an error containing want.
func policyError(t *testing.T, docs, proxy, want string) {
	t.Helper()
	_, err := buildPolicies(t, docs, proxy, "")
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %v, want one containing %q", err, want)
	}
}

// checkResources fails the test when a resource does not pass Envoy's
// validation or holds a field trellis-dp does not implement (it would
// NACK it).
func checkResources(t *testing.T, proxy string, r *build.Resources) {
	t.Helper()
	for _, res := range r.ByType() {
		for _, x := range res {
			if err := x.(interface{ ValidateAll() error }).ValidateAll(); err != nil {
				t.Fatalf("%s: %T does not pass Envoy's validation: %v", proxy, x, err)
			}
			if errs := allowlist.Check(x.(proto.Message)); len(errs) > 0 {
				t.Errorf("%s: trellis-dp would NACK %T: %v", proxy, x, errs)
			}
		}
	}
}
