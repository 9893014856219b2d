package build_test

import "testing"

const rateLimitPolicies = `
type: MeshRateLimit
mesh: default
name: limits
spec:
  targetRef: {kind: Mesh, proxyTypes: [Sidecar]}
  from:
  - targetRef: {kind: Mesh}
    default:
      local:
        http:
          requestRate: {num: 10, interval: 1s}
          onRateLimit:
            status: 423
            headers:
              add: [{name: x-limited, value: "true"}]
              set: [{name: x-why, value: "too,many"}]
        tcp:
          connectionRate: {num: 5, interval: 100ms}
---
type: MeshRateLimit
mesh: default
name: backend-off
spec:
  targetRef: {kind: MeshService, name: backend}
  rules:
  - default:
      local:
        http: {disabled: true}
`

// web-1 (http) gets the HTTP filter before the router; redis-1 (tcp) the
// network filter before tcp_proxy; backend-1's rules[] disable its HTTP
// limit.
func TestMeshRateLimitGolden(t *testing.T) {
	policyGolden(t, "meshratelimit", rateLimitPolicies, "", "web-1", "redis-1", "backend-1")
}

// With mTLS on, the TCP limit sits after authorization, before tcp_proxy,
// on every chain of a PERMISSIVE listener.
func TestMeshRateLimitMTLS(t *testing.T) {
	policyGolden(t, "meshratelimit-mtls", rateLimitPolicies, "PERMISSIVE", "redis-1")
}
