package meshhealthcheck_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/api/policy/internal/p1test"
)

func TestExamples(t *testing.T) { p1test.RunTestdata(t, "meshhealthcheck") }

func TestInvalid(t *testing.T) {
	p1test.RunInvalid(t, []p1test.Case{
		{
			Name: "rules is not a MeshHealthCheck section",
			Manifest: `
type: MeshHealthCheck
name: h
mesh: default
spec:
  rules:
    - default: {tcp: {}}`,
			Field: "spec.rules", Reason: "unknown field",
		},
		{
			Name: "tcp payload not base64",
			Manifest: `
type: MeshHealthCheck
name: h
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {tcp: {send: "not base64!"}}`,
			Field: "spec.to[0].default.tcp.send", Reason: "base64",
		},
		{
			Name: "jitter percent above 100",
			Manifest: `
type: MeshHealthCheck
name: h
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {intervalJitterPercent: 101, tcp: {}}`,
			Field: "spec.to[0].default.intervalJitterPercent", Reason: "range",
		},
		{
			Name: "empty http path",
			Manifest: `
type: MeshHealthCheck
name: h
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {http: {path: ""}}`,
			Field: "spec.to[0].default.http.path", Reason: "must not be empty",
		},
		{
			Name: "upper-case header name",
			Manifest: `
type: MeshHealthCheck
name: h
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {http: {requestHeadersToAdd: {add: [{name: X-Check, value: "1"}]}}}`,
			Field: "spec.to[0].default.http.requestHeadersToAdd.add[0].name", Reason: "lower-case",
		},
		{
			Name: "MeshExternalService under a Dataplane targetRef",
			Manifest: `
type: MeshHealthCheck
name: h
mesh: default
spec:
  targetRef: {kind: Dataplane, labels: {app: web}}
  to:
    - targetRef: {kind: MeshExternalService, name: httpbin}
      default: {tcp: {}}`,
			Field: "spec.to[0].targetRef.kind", Reason: "top-level targetRef of kind Mesh",
		},
		{
			Name: "panic threshold not a number",
			Manifest: `
type: MeshHealthCheck
name: h
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {healthyPanicThreshold: "half", tcp: {}}`,
			Field: "spec.to[0].default.healthyPanicThreshold", Reason: "not a number",
		},
		{
			Name: "expected statuses of the wrong type",
			Manifest: `
type: MeshHealthCheck
name: h
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {http: {expectedStatuses: 200}}`,
			Field: "spec.to[0].default.http.expectedStatuses", Reason: "list",
		},
	})
}
