package meshfaultinjection_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/api/policy/internal/p1test"
	"github.com/trellis-mesh/trellis/api/policy/meshfaultinjection"
)

func TestExamples(t *testing.T) { p1test.RunTestdata(t, "meshfaultinjection") }

func TestInvalid(t *testing.T) {
	p1test.RunInvalid(t, []p1test.Case{
		{
			Name: "to on sidecars",
			Manifest: `
type: MeshFaultInjection
name: f
mesh: default
spec:
  targetRef: {kind: Dataplane, labels: {app: b}}
  to:
    - targetRef: {kind: Mesh}
      default: {http: [{abort: {httpStatus: 500, percentage: 1}}]}`,
			Field: "spec.to", Reason: "must not be defined",
		},
		{
			Name: "MeshService in to under a gateway",
			Manifest: `
type: MeshFaultInjection
name: f
mesh: default
spec:
  targetRef: {kind: MeshGateway, name: gw}
  to:
    - targetRef: {kind: MeshService, name: backend}
      default: {http: [{abort: {httpStatus: 500, percentage: 1}}]}`,
			Field: "spec.to[0].targetRef.kind", Reason: "not supported",
		},
		{
			Name: "missing percentage",
			Manifest: `
type: MeshFaultInjection
name: f
mesh: default
spec:
  targetRef: {kind: Dataplane}
  rules:
    - default: {http: [{delay: {value: 1s}}]}`,
			Field: "spec.rules[0].default.http[0].delay.percentage", Reason: "must be defined",
		},
		{
			Name: "bad delay",
			Manifest: `
type: MeshFaultInjection
name: f
mesh: default
spec:
  targetRef: {kind: Dataplane}
  rules:
    - default: {http: [{delay: {value: forever, percentage: 1}}]}`,
			Field: "spec.rules[0].default.http[0].delay.value", Reason: "duration",
		},
		{
			Name: "rules with from",
			Manifest: `
type: MeshFaultInjection
name: f
mesh: default
spec:
  targetRef: {kind: Dataplane}
  from:
    - targetRef: {kind: Mesh}
      default: {http: [{abort: {httpStatus: 500, percentage: 1}}]}
  rules:
    - default: {http: [{abort: {httpStatus: 500, percentage: 1}}]}`,
			Field: "spec", Reason: "must be empty when 'rules' is defined",
		},
		{
			Name: "MeshHTTPRoute top-level",
			Manifest: `
type: MeshFaultInjection
name: f
mesh: default
spec:
  targetRef: {kind: MeshHTTPRoute, name: r}
  to:
    - targetRef: {kind: Mesh}
      default: {http: [{abort: {httpStatus: 500, percentage: 1}}]}`,
			Field: "spec.targetRef.kind", Reason: "not supported",
		},
	})
}

func TestPercentageKeepsItsForm(t *testing.T) {
	res := p1test.MustDecode(t, `
type: MeshFaultInjection
name: f
mesh: default
spec:
  targetRef: {kind: Dataplane}
  rules:
    - default:
        http:
          - abort: {httpStatus: 500, percentage: "2.50"}
          - abort: {httpStatus: 503, percentage: 10}`)
	spec := res.Spec.(*meshfaultinjection.Spec)
	first := spec.Rules[0].Default.HTTP[0].Abort.Percentage
	if !first.IsString() || first.String() != "2.50" {
		t.Errorf("percentage = %q (string %v), want the string \"2.50\"", first.String(), first.IsString())
	}
	if second := spec.Rules[0].Default.HTTP[1].Abort.Percentage; second.IsString() {
		t.Errorf("integer percentage became a string")
	}
}
