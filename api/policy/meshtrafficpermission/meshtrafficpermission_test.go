package meshtrafficpermission_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/api/policy/internal/p1test"
	"github.com/trellis-mesh/trellis/api/policy/meshtrafficpermission"
)

func TestExamples(t *testing.T) { p1test.RunTestdata(t, "meshtrafficpermission") }

func TestInvalid(t *testing.T) {
	p1test.RunInvalid(t, []p1test.Case{
		{
			Name: "no section",
			Manifest: `
type: MeshTrafficPermission
name: p
mesh: default
spec:
  targetRef: {kind: Mesh}`,
			Field: "spec", Reason: "at least one of 'from' or 'rules'",
		},
		{
			Name: "empty rule",
			Manifest: `
type: MeshTrafficPermission
name: p
mesh: default
spec:
  rules:
    - default: {}`,
			Field: "spec.rules[0]", Reason: "at least one of",
		},
		{
			Name: "match without spiffeID",
			Manifest: `
type: MeshTrafficPermission
name: p
mesh: default
spec:
  rules:
    - default:
        deny: [{}]`,
			Field: "spec.rules[0].default.deny[0].spiffeID", Reason: "must be defined",
		},
		{
			Name: "match without value",
			Manifest: `
type: MeshTrafficPermission
name: p
mesh: default
spec:
  rules:
    - default:
        allowWithShadowDeny: [{spiffeID: {type: Exact, value: ""}}]`,
			Field: "spec.rules[0].default.allowWithShadowDeny[0].spiffeID.value", Reason: "must be defined",
		},
		{
			Name: "gateway top-level",
			Manifest: `
type: MeshTrafficPermission
name: p
mesh: default
spec:
  targetRef: {kind: MeshGateway, name: edge}
  from:
    - targetRef: {kind: Mesh}
      default: {action: Allow}`,
			Field: "spec.targetRef.kind", Reason: "not supported",
		},
		{
			Name: "MeshSubset without tags value",
			Manifest: `
type: MeshTrafficPermission
name: p
mesh: default
spec:
  from:
    - targetRef: {kind: MeshSubset, tags: {app: ""}}
      default: {action: Allow}`,
			Field: `spec.from[0].targetRef.tags["app"]`, Reason: "must not be empty",
		},
		{
			Name: "lower-case action",
			Manifest: `
type: MeshTrafficPermission
name: p
mesh: default
spec:
  from:
    - targetRef: {kind: Mesh}
      default: {action: allow}`,
			Field: "spec.from[0].default.action", Reason: "unknown value",
		},
	})
}

func TestDecodedValues(t *testing.T) {
	res := p1test.MustDecode(t, `
type: MeshTrafficPermission
name: p
mesh: default
spec:
  from:
    - targetRef: {kind: Mesh}
      default: {action: AllowWithShadowDeny}`)
	spec := res.Spec.(*meshtrafficpermission.Spec)
	if got := *spec.From[0].Default.Action; got != meshtrafficpermission.AllowWithShadowDeny {
		t.Errorf("action = %q", got)
	}
}
