package build_test

import "testing"

const lbPolicies = `
type: MeshLoadBalancingStrategy
mesh: default
name: lb-all
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: MeshService, name: backend}
    default:
      loadBalancer:
        type: RingHash
        ringHash:
          hashFunction: MurmurHash2
          minRingSize: 64
          maxRingSize: 1024
          hashPolicies:
          - type: Header
            header: {name: x-user}
            terminal: true
          - type: Cookie
            cookie: {name: session, ttl: 1h, path: /}
          - type: Connection
            connection: {sourceIP: true}
          - type: QueryParameter
            queryParameter: {name: user}
          - type: FilterState
            filterState: {key: io.trellis.key}
  - targetRef: {kind: MeshService, name: api}
    default:
      loadBalancer:
        type: Maglev
        maglev:
          tableSize: 1021
          hashPolicies:
          - type: Header
            header: {name: x-api-key}
  - targetRef: {kind: MeshService, name: greeter}
    default:
      loadBalancer:
        type: LeastRequest
        leastRequest: {choiceCount: 3, activeRequestBias: "1.5"}
  - targetRef: {kind: MeshService, name: redis}
    default:
      loadBalancer: {type: Random}
      localityAwareness: {disabled: true}
`

// Each algorithm and its settings on its cluster, hash policies on the
// routes of the RingHash and Maglev services, and backend's west
// endpoint at priority 1 for web-1 (zone east).
func TestMeshLoadBalancingStrategyGolden(t *testing.T) {
	policyGolden(t, "meshloadbalancingstrategy", lbPolicies, "", "web-1")
}

// crossZone failover: a step for other caller zones is skipped, a step
// to the listed zones gives them the next priority; None stops before
// any other zone, so backend's west endpoint is dropped.
func TestMeshLoadBalancingStrategyFailover(t *testing.T) {
	policyGolden(t, "meshloadbalancingstrategy-failover", `
type: MeshLoadBalancingStrategy
mesh: default
name: failover
spec:
  to:
  - targetRef: {kind: MeshService, name: backend}
    default:
      localityAwareness:
        crossZone:
          failover:
          - from: {zones: [west]}
            to: {type: None}
          - to: {type: Only, zones: [west]}
`, "", "web-1")
	policyGolden(t, "meshloadbalancingstrategy-none", `
type: MeshLoadBalancingStrategy
mesh: default
name: stay-in-zone
spec:
  to:
  - targetRef: {kind: MeshService, name: backend}
    default:
      localityAwareness:
        crossZone:
          failover:
          - to: {type: None}
`, "", "web-1")
}
