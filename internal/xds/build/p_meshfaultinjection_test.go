package build_test

import "testing"

const faultPolicies = `
type: MeshFaultInjection
mesh: default
name: faults
spec:
  targetRef: {kind: MeshService, name: web}
  from:
  - targetRef: {kind: Mesh}
    default:
      http:
      - abort: {httpStatus: 503, percentage: 100}
      - delay: {value: 5s, percentage: 50}
        responseBandwidth: {limit: 10Mbps, percentage: "2.5"}
  - targetRef: {kind: MeshService, name: backend}
    default:
      http:
      - abort: {httpStatus: 418, percentage: 100}
`

// web-1's inbound HCM gets one fault filter per http[] item of the
// Mesh-wide rule, before the router; the rule for backend's clients
// only is not applied.
func TestMeshFaultInjectionGolden(t *testing.T) {
	policyGolden(t, "meshfaultinjection", faultPolicies, "", "web-1")
}

// A rules[] conf applies to every client, over from[].
func TestMeshFaultInjectionRules(t *testing.T) {
	policyGolden(t, "meshfaultinjection-rules", `
type: MeshFaultInjection
mesh: default
name: rules
spec:
  targetRef: {kind: MeshService, name: backend}
  rules:
  - default:
      http:
      - abort: {httpStatus: 500, percentage: 10}
`, "", "backend-1")
}
