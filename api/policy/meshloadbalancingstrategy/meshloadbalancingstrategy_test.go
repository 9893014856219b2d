package meshloadbalancingstrategy_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/api/policy/internal/p1test"
)

func TestExamples(t *testing.T) { p1test.RunTestdata(t, "meshloadbalancingstrategy") }

func TestInvalid(t *testing.T) {
	p1test.RunInvalid(t, []p1test.Case{
		{
			Name: "missing load balancer type",
			Manifest: `
type: MeshLoadBalancingStrategy
name: l
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {loadBalancer: {random: {}}}`,
			Field: "spec.to[0].default.loadBalancer.type", Reason: "must be defined",
		},
		{
			Name: "choice count below 2",
			Manifest: `
type: MeshLoadBalancingStrategy
name: l
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {loadBalancer: {type: LeastRequest, leastRequest: {choiceCount: 1}}}`,
			Field: "spec.to[0].default.loadBalancer.leastRequest.choiceCount", Reason: "at least 2",
		},
		{
			Name: "ring too big",
			Manifest: `
type: MeshLoadBalancingStrategy
name: l
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {loadBalancer: {type: RingHash, ringHash: {maxRingSize: 9000000}}}`,
			Field: "spec.to[0].default.loadBalancer.ringHash.maxRingSize", Reason: "range",
		},
		{
			Name: "unknown hash function",
			Manifest: `
type: MeshLoadBalancingStrategy
name: l
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {loadBalancer: {type: RingHash, ringHash: {hashFunction: XX_HASH}}}`,
			Field: "spec.to[0].default.loadBalancer.ringHash.hashFunction", Reason: "unknown value",
		},
		{
			Name: "relative cookie path",
			Manifest: `
type: MeshLoadBalancingStrategy
name: l
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default:
        loadBalancer:
          type: Maglev
          maglev: {hashPolicies: [{type: Cookie, cookie: {name: s, path: app}}]}`,
			Field: "spec.to[0].default.loadBalancer.maglev.hashPolicies[0].cookie.path", Reason: "absolute",
		},
		{
			Name: "unknown hash policy type",
			Manifest: `
type: MeshLoadBalancingStrategy
name: l
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {hashPolicies: [{type: SourceIP}]}`,
			Field: "spec.to[0].default.hashPolicies[0].type", Reason: "unknown value",
		},
		{
			Name: "zones with type Any",
			Manifest: `
type: MeshLoadBalancingStrategy
name: l
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default:
        localityAwareness:
          crossZone: {failover: [{to: {type: Any, zones: [z1]}}]}`,
			Field: "spec.to[0].default.localityAwareness.crossZone.failover[0].to.zones", Reason: "must be empty",
		},
		{
			Name: "empty from zones",
			Manifest: `
type: MeshLoadBalancingStrategy
name: l
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default:
        localityAwareness:
          crossZone: {failover: [{from: {zones: []}, to: {type: Any}}]}`,
			Field: "spec.to[0].default.localityAwareness.crossZone.failover[0].from.zones", Reason: "must not be empty",
		},
		{
			Name: "failover threshold above 100",
			Manifest: `
type: MeshLoadBalancingStrategy
name: l
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default:
        localityAwareness:
          crossZone: {failoverThreshold: {percentage: 101}}`,
			Field: "spec.to[0].default.localityAwareness.crossZone.failoverThreshold.percentage", Reason: "between 0 and 100",
		},
		{
			Name: "MeshSubset destination",
			Manifest: `
type: MeshLoadBalancingStrategy
name: l
mesh: default
spec:
  to:
    - targetRef: {kind: MeshSubset, tags: {a: b}}
      default: {loadBalancer: {type: Random}}`,
			Field: "spec.to[0].targetRef.kind", Reason: "not supported",
		},
		{
			Name: "route destination without a name",
			Manifest: `
type: MeshLoadBalancingStrategy
name: l
mesh: default
spec:
  to:
    - targetRef: {kind: MeshHTTPRoute}
      default: {hashPolicies: [{type: Connection, connection: {sourceIP: true}}]}`,
			Field: "spec.to[0].targetRef.name", Reason: "must be set",
		},
	})
}
