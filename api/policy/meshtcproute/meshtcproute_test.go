package meshtcproute_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/api/policy/meshtcproute"
)

func TestDecodesTypedSpec(t *testing.T) {
	res := mustDecode(t, `
type: MeshTCPRoute
name: route
mesh: default
spec:
  to:
    - targetRef: {kind: MeshMultiZoneService, name: db}
      rules:
        - default:
            backendRefs: [{kind: MeshMultiZoneService, name: db, port: 5432}]
`)
	spec := res.Spec.(*meshtcproute.Spec)
	if spec.TargetRef != nil || *spec.To[0].Rules[0].Default.BackendRefs[0].Port != 5432 {
		t.Errorf("spec = %+v", spec)
	}
}

func TestRejects(t *testing.T) {
	cases := []struct {
		name, spec, field, reason string
	}{
		{"two rules", `
  to:
    - targetRef: {kind: MeshService, name: b}
      rules:
        - default: {backendRefs: [{kind: MeshService, name: b}]}
        - default: {backendRefs: [{kind: MeshService, name: c}]}
`, "spec.to[0].rules", "at most 1"},
		{"missing backendRefs", `
  to:
    - targetRef: {kind: MeshService, name: b}
      rules:
        - default: {}
`, "spec.to[0].rules[0].default.backendRefs", "must be defined"},
		{"port out of range", `
  to:
    - targetRef: {kind: MeshService, name: b}
      rules:
        - default: {backendRefs: [{kind: MeshService, name: b, port: 70000}]}
`, "spec.to[0].rules[0].default.backendRefs[0].port", "range"},
		{"multizone needs port", `
  to:
    - targetRef: {kind: MeshService, name: b}
      rules:
        - default: {backendRefs: [{kind: MeshMultiZoneService, name: b}]}
`, "spec.to[0].rules[0].default.backendRefs[0].port", "must be defined"},
		{"to kind", `
  to:
    - targetRef: {kind: MeshServiceSubset, name: b, tags: {version: v1}}
`, "spec.to[0].targetRef.kind", "not supported"},
		{"top kind", `
  targetRef: {kind: MeshHTTPRoute, name: r}
`, "spec.targetRef.kind", "not supported"},
		{"tags need MeshGateway", `
  targetRef: {kind: Mesh, tags: {port: a}}
`, "spec.targetRef.tags", "must not be set"},
		{"missing service name", `
  to:
    - targetRef: {kind: MeshService}
`, "spec.to[0].targetRef.name", "must be set"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectViolation(t, "type: MeshTCPRoute\nname: r\nmesh: default\nspec:\n"+tc.spec, tc.field, tc.reason)
		})
	}
}
