package meshratelimit_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/api/policy/internal/p1test"
)

func TestExamples(t *testing.T) { p1test.RunTestdata(t, "meshratelimit") }

func TestInvalid(t *testing.T) {
	p1test.RunInvalid(t, []p1test.Case{
		{
			Name: "rules and from together",
			Manifest: `
type: MeshRateLimit
name: r
mesh: default
spec:
  targetRef: {kind: Dataplane, labels: {app: b}}
  from:
    - targetRef: {kind: Mesh}
      default: {local: {tcp: {disabled: true}}}
  rules:
    - default: {local: {tcp: {disabled: true}}}`,
			Field: "spec", Reason: "must be empty when 'rules' is defined",
		},
		{
			Name: "MeshService in from",
			Manifest: `
type: MeshRateLimit
name: r
mesh: default
spec:
  targetRef: {kind: Dataplane, labels: {app: b}}
  from:
    - targetRef: {kind: MeshService, name: web}
      default: {local: {tcp: {disabled: true}}}`,
			Field: "spec.from[0].targetRef.kind", Reason: "not supported",
		},
		{
			Name: "empty local",
			Manifest: `
type: MeshRateLimit
name: r
mesh: default
spec:
  targetRef: {kind: Dataplane}
  rules:
    - default: {local: {}}`,
			Field: "spec.rules[0].default.local", Reason: "at least one",
		},
		{
			Name: "empty http limit",
			Manifest: `
type: MeshRateLimit
name: r
mesh: default
spec:
  targetRef: {kind: Dataplane}
  rules:
    - default: {local: {http: {}}}`,
			Field: "spec.rules[0].default.local.http", Reason: "at least one",
		},
		{
			Name: "missing interval",
			Manifest: `
type: MeshRateLimit
name: r
mesh: default
spec:
  targetRef: {kind: Dataplane}
  rules:
    - default: {local: {http: {requestRate: {num: 5}}}}`,
			Field: "spec.rules[0].default.local.http.requestRate.interval", Reason: "must be defined",
		},
		{
			Name: "zero status",
			Manifest: `
type: MeshRateLimit
name: r
mesh: default
spec:
  targetRef: {kind: Dataplane}
  rules:
    - default: {local: {http: {onRateLimit: {status: 0}}}}`,
			Field: "spec.rules[0].default.local.http.onRateLimit.status", Reason: "greater than 0",
		},
		{
			Name: "from under a MeshHTTPRoute",
			Manifest: `
type: MeshRateLimit
name: r
mesh: default
spec:
  targetRef: {kind: MeshHTTPRoute, name: route}
  from:
    - targetRef: {kind: Mesh}
      default: {local: {tcp: {disabled: true}}}`,
			Field: "spec.from", Reason: "MeshHTTPRoute",
		},
		{
			Name: "num of the wrong type",
			Manifest: `
type: MeshRateLimit
name: r
mesh: default
spec:
  targetRef: {kind: Dataplane}
  rules:
    - default: {local: {http: {requestRate: {num: -5, interval: 1s}}}}`,
			Field: "spec.rules[0].default.local.http.requestRate.num", Reason: "non-negative",
		},
	})
}
