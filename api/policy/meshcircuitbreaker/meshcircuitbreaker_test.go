package meshcircuitbreaker_test

import (
	"encoding/json"
	"testing"

	"github.com/trellis-mesh/trellis/api/policy/internal/p1test"
	"github.com/trellis-mesh/trellis/api/policy/meshcircuitbreaker"
)

func TestExamples(t *testing.T) { p1test.RunTestdata(t, "meshcircuitbreaker") }

func TestInvalid(t *testing.T) {
	p1test.RunInvalid(t, []p1test.Case{
		{
			Name: "empty default",
			Manifest: `
type: MeshCircuitBreaker
name: c
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {}`,
			Field: "spec.to[0].default", Reason: "at least one of",
		},
		{
			Name: "no section",
			Manifest: `
type: MeshCircuitBreaker
name: c
mesh: default
spec:
  targetRef: {kind: Mesh}`,
			Field: "spec", Reason: "at least one of",
		},
		{
			Name: "empty detectors",
			Manifest: `
type: MeshCircuitBreaker
name: c
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {outlierDetection: {detectors: {}}}`,
			Field: "spec.to[0].default.outlierDetection.detectors", Reason: "at least one",
		},
		{
			Name: "zero consecutive",
			Manifest: `
type: MeshCircuitBreaker
name: c
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {outlierDetection: {detectors: {gatewayFailures: {consecutive: 0}}}}`,
			Field: "spec.to[0].default.outlierDetection.detectors.gatewayFailures.consecutive", Reason: "greater than 0",
		},
		{
			Name: "threshold above 100",
			Manifest: `
type: MeshCircuitBreaker
name: c
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {outlierDetection: {detectors: {failurePercentage: {threshold: 101}}}}`,
			Field: "spec.to[0].default.outlierDetection.detectors.failurePercentage.threshold", Reason: "range",
		},
		{
			Name: "max ejection percent above 100",
			Manifest: `
type: MeshCircuitBreaker
name: c
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {outlierDetection: {maxEjectionPercent: 150, detectors: {totalFailures: {consecutive: 1}}}}`,
			Field: "spec.to[0].default.outlierDetection.maxEjectionPercent", Reason: "range",
		},
		{
			Name: "negative deviation factor",
			Manifest: `
type: MeshCircuitBreaker
name: c
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {outlierDetection: {detectors: {successRate: {standardDeviationFactor: "-1.5"}}}}`,
			Field: "spec.to[0].default.outlierDetection.detectors.successRate.standardDeviationFactor", Reason: "greater than 0",
		},
		{
			Name: "panic threshold above 100",
			Manifest: `
type: MeshCircuitBreaker
name: c
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {outlierDetection: {healthyPanicThreshold: "100.5", detectors: {totalFailures: {consecutive: 1}}}}`,
			Field: "spec.to[0].default.outlierDetection.healthyPanicThreshold", Reason: "between 0 and 100",
		},
		{
			Name: "MeshService in from",
			Manifest: `
type: MeshCircuitBreaker
name: c
mesh: default
spec:
  from:
    - targetRef: {kind: MeshService, name: web}
      default: {connectionLimits: {maxConnections: 1}}`,
			Field: "spec.from[0].targetRef.kind", Reason: "not supported",
		},
		{
			Name: "MeshExternalService under a Dataplane targetRef",
			Manifest: `
type: MeshCircuitBreaker
name: c
mesh: default
spec:
  targetRef: {kind: Dataplane, labels: {app: web}}
  to:
    - targetRef: {kind: MeshExternalService, name: httpbin}
      default: {connectionLimits: {maxConnections: 1}}`,
			Field: "spec.to[0].targetRef.kind", Reason: "zone egress",
		},
		{
			Name: "disabled of the wrong type",
			Manifest: `
type: MeshCircuitBreaker
name: c
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {outlierDetection: {disabled: "yes", detectors: {totalFailures: {consecutive: 1}}}}`,
			Field: "spec.to[0].default.outlierDetection.disabled", Reason: "boolean",
		},
	})
}

func TestDefaults(t *testing.T) {
	defaults := meshcircuitbreaker.Defaults("default")
	spec, ok := defaults["mesh-circuit-breaker-all-default"]
	if !ok || len(defaults) != 1 {
		t.Fatalf("want one default named mesh-circuit-breaker-all-default, got %v", defaults)
	}
	if err := spec.Validate(); err != nil {
		t.Fatalf("default is invalid: %v", err)
	}
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"targetRef":{"kind":"Mesh"},"to":[{"targetRef":{"kind":"Mesh"},"default":{"connectionLimits":` +
		`{"maxConnections":1024,"maxPendingRequests":1024,"maxRetries":3,"maxRequests":1024}}}]}`
	if string(js) != want {
		t.Errorf("default JSON\n got: %s\nwant: %s", js, want)
	}
}
