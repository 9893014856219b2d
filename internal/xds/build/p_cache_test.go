package build_test

import (
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// Proxies built concurrently from one index share matched rules and
// decoded confs (the plugins' caches): every build of a proxy gives the
// same resources, and (under -race) no plugin writes what another reads.
func TestPolicyPluginsConcurrentBuilds(t *testing.T) {
	docs := timeoutPolicies + "\n---\n" + retryPolicies + "\n---\n" + circuitBreakerPolicies + "\n---\n" +
		healthCheckPolicies + "\n---\n" + lbPolicies + "\n---\n" + faultPolicies + "\n---\n" +
		rateLimitPolicies + "\n---\n" + tlsPolicies
	ix := policyIndex(t, policyItems(t, docs))
	names := []string{"web-1", "backend-1", "redis-1"}
	const rounds = 4
	got := make([][]map[string]proto.Message, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		got[i] = make([]map[string]proto.Message, rounds)
		for r := range rounds {
			wg.Go(func() {
				p, err := ix.Build(name)
				if err != nil {
					t.Error(err)
					return
				}
				p.MTLS = testMTLS(t, proxymodel.MTLSStrict, p.Services)
				res, err := build.Sidecar(p)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				got[i][r] = resourcesByName(res)
			})
		}
	}
	wg.Wait()
	for i, name := range names {
		first := got[i][0]
		for r := 1; r < rounds; r++ {
			if len(got[i][r]) != len(first) {
				t.Fatalf("%s: build %d has %d resources, build 0 %d", name, r, len(got[i][r]), len(first))
			}
			for k, w := range first {
				if !proto.Equal(got[i][r][k], w) {
					t.Errorf("%s: %s differs between builds 0 and %d", name, k, r)
				}
			}
		}
	}
}
