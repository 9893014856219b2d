package meshtls_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/api/policy/meshtls"
)

func TestDecodesTypedSpec(t *testing.T) {
	res := mustDecode(t, `
type: MeshTLS
name: t
mesh: default
spec:
  rules:
    - default: {mode: Permissive}
`)
	spec := res.Spec.(*meshtls.Spec)
	if *spec.Rules[0].Default.Mode != meshtls.ModePermissive || spec.TargetRef != nil {
		t.Errorf("spec = %+v", spec)
	}
}

func TestRejects(t *testing.T) {
	cases := []struct {
		name, spec, field, reason string
	}{
		{"rules and from", `
  from: [{targetRef: {kind: Mesh}, default: {mode: Strict}}]
  rules: [{default: {mode: Strict}}]
`, "spec", "'from' must be empty"},
		{"from kind", `
  from: [{targetRef: {kind: MeshService, name: a}}]
`, "spec.from[0].targetRef.kind", "not supported"},
		{"top kind", `
  targetRef: {kind: MeshService, name: a}
  rules: [{default: {mode: Strict}}]
`, "spec.targetRef.kind", "not supported"},
		{"unknown cipher", `
  rules: [{default: {tlsCiphers: [AES128-SHA]}}]
`, "spec.rules[0].default.tlsCiphers[0]", "unknown value"},
		{"unknown version", `
  rules: [{default: {tlsVersion: {max: TLS14}}}]
`, "spec.rules[0].default.tlsVersion.max", "unknown value"},
		{"version on subset", `
  targetRef: {kind: MeshSubset, tags: {kuma.io/zone: east}}
  from: [{targetRef: {kind: Mesh}, default: {tlsVersion: {min: TLS12}}}]
`, "spec.from[0].default.tlsVersion", "top level targetRef kind: Mesh"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectViolation(t, "type: MeshTLS\nname: t\nmesh: default\nspec:\n"+tc.spec, tc.field, tc.reason)
		})
	}
}
