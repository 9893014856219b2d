package build_test

import "testing"

const circuitBreakerPolicies = `
type: MeshCircuitBreaker
mesh: default
name: cb-all
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Mesh}
    default:
      connectionLimits:
        maxConnections: 2
        maxPendingRequests: 1
        maxRequests: 3
        maxRetries: 4
  - targetRef: {kind: MeshService, name: backend}
    default:
      outlierDetection:
        interval: 5s
        baseEjectionTime: 30s
        maxEjectionPercent: 20
        splitExternalAndLocalErrors: true
        healthyPanicThreshold: "12.5"
        detectors:
          totalFailures: {consecutive: 5}
          gatewayFailures: {consecutive: 6}
          localOriginFailures: {consecutive: 7}
          successRate: {minimumHosts: 3, requestVolume: 50, standardDeviationFactor: "1.9"}
          failurePercentage: {minimumHosts: 4, requestVolume: 60, threshold: 85}
  - targetRef: {kind: MeshService, name: redis}
    default:
      outlierDetection:
        detectors: {gatewayFailures: {consecutive: 6}}
  - targetRef: {kind: MeshService, name: api}
    default:
      outlierDetection:
        disabled: true
        detectors: {totalFailures: {consecutive: 1}}
  from:
  - targetRef: {kind: Mesh}
    default:
      connectionLimits: {maxConnections: 100}
`

// backend gets every field; redis outlier detection with only the
// gateway failures detector (the others' enforcement off); api limits
// without outlier detection; the local
// cluster of web-1 its from[] limits.
func TestMeshCircuitBreakerGolden(t *testing.T) {
	policyGolden(t, "meshcircuitbreaker", circuitBreakerPolicies, "", "web-1")
}

func TestMeshCircuitBreakerUnsupported(t *testing.T) {
	policyError(t, `
type: MeshCircuitBreaker
mesh: default
name: pools
spec:
  to:
  - targetRef: {kind: Mesh}
    default:
      connectionLimits: {maxConnectionPools: 2}
`, "web-1", "maxConnectionPools is not supported")
}
