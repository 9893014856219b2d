package meshretry_test

import (
	"encoding/json"
	"testing"

	"github.com/trellis-mesh/trellis/api/policy/internal/p1test"
	"github.com/trellis-mesh/trellis/api/policy/meshretry"
)

func TestExamples(t *testing.T) { p1test.RunTestdata(t, "meshretry") }

func TestInvalid(t *testing.T) {
	p1test.RunInvalid(t, []p1test.Case{
		{
			Name: "from is not a MeshRetry section",
			Manifest: `
type: MeshRetry
name: r
mesh: default
spec:
  from:
    - targetRef: {kind: Mesh}
      default: {tcp: {maxConnectAttempt: 1}}`,
			Field: "spec.from", Reason: "unknown field",
		},
		{
			Name: "rules is not a MeshRetry section",
			Manifest: `
type: MeshRetry
name: r
mesh: default
spec:
  rules:
    - default: {tcp: {maxConnectAttempt: 1}}`,
			Field: "spec.rules", Reason: "unknown field",
		},
		{
			Name: "zero connect attempts",
			Manifest: `
type: MeshRetry
name: r
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {tcp: {maxConnectAttempt: 0}}`,
			Field: "spec.to[0].default.tcp.maxConnectAttempt", Reason: "greater than 0",
		},
		{
			Name: "MeshSubset in to",
			Manifest: `
type: MeshRetry
name: r
mesh: default
spec:
  to:
    - targetRef: {kind: MeshSubset, tags: {version: v1}}
      default: {http: {numRetries: 1}}`,
			Field: "spec.to[0].targetRef.kind", Reason: "not supported",
		},
		{
			Name: "MeshService in to under a gateway",
			Manifest: `
type: MeshRetry
name: r
mesh: default
spec:
  targetRef: {kind: MeshGateway, name: gw}
  to:
    - targetRef: {kind: MeshService, name: backend}
      default: {http: {numRetries: 1}}`,
			Field: "spec.to[0].targetRef.kind", Reason: "not supported",
		},
		{
			Name: "empty back-off",
			Manifest: `
type: MeshRetry
name: r
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {http: {backOff: {}}}`,
			Field: "spec.to[0].default.http.backOff", Reason: "must not be empty",
		},
		{
			Name: "rate-limited back-off without headers",
			Manifest: `
type: MeshRetry
name: r
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {grpc: {rateLimitedBackOff: {maxInterval: 10s}}}`,
			Field: "spec.to[0].default.grpc.rateLimitedBackOff.resetHeaders", Reason: "must be defined",
		},
		{
			Name: "upper-case reset header",
			Manifest: `
type: MeshRetry
name: r
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default:
        http:
          rateLimitedBackOff:
            resetHeaders: [{name: Retry-After, format: Seconds}]`,
			Field: "spec.to[0].default.http.rateLimitedBackOff.resetHeaders[0].name", Reason: "lower-case",
		},
		{
			Name: "unknown reset header format",
			Manifest: `
type: MeshRetry
name: r
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default:
        http:
          rateLimitedBackOff:
            resetHeaders: [{name: retry-after, format: Minutes}]`,
			Field: "spec.to[0].default.http.rateLimitedBackOff.resetHeaders[0].format", Reason: "unknown value",
		},
		{
			Name: "OmitHostsWithTags without tags",
			Manifest: `
type: MeshRetry
name: r
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {http: {hostSelection: [{predicate: OmitHostsWithTags}]}}`,
			Field: "spec.to[0].default.http.hostSelection[0].tags", Reason: "must be defined",
		},
		{
			Name: "OmitPreviousPriorities twice",
			Manifest: `
type: MeshRetry
name: r
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default:
        http:
          hostSelection:
            - {predicate: OmitPreviousPriorities, updateFrequency: 2}
            - {predicate: OmitPreviousPriorities, updateFrequency: 2}`,
			Field: "spec.to[0].default.http.hostSelection[1].predicate", Reason: "only be specified once",
		},
		{
			Name: "unknown header match type",
			Manifest: `
type: MeshRetry
name: r
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default:
        http:
          retriableResponseHeaders: [{type: Suffix, name: x-a, value: b}]`,
			Field: "spec.to[0].default.http.retriableResponseHeaders[0].type", Reason: "unknown value",
		},
		{
			Name: "numRetries of the wrong type",
			Manifest: `
type: MeshRetry
name: r
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {http: {numRetries: "5"}}`,
			Field: "spec.to[0].default.http.numRetries", Reason: "integer",
		},
	})
}

func TestStatusCodeRetryOn(t *testing.T) {
	p1test.MustDecode(t, `
type: MeshRetry
name: r
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default:
        http:
          retryOn: ["429", "503", "5XX", Reset]`)
}

func TestDefaults(t *testing.T) {
	defaults := meshretry.Defaults("payments")
	spec, ok := defaults["mesh-retry-all-payments"]
	if !ok || len(defaults) != 1 {
		t.Fatalf("want one default named mesh-retry-all-payments, got %v", defaults)
	}
	if err := spec.Validate(); err != nil {
		t.Fatalf("default is invalid: %v", err)
	}
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"targetRef":{"kind":"Mesh"},"to":[{"targetRef":{"kind":"Mesh"},"default":{` +
		`"tcp":{"maxConnectAttempt":5},` +
		`"http":{"numRetries":5,"perTryTimeout":"16s","backOff":{"baseInterval":"25ms","maxInterval":"250ms"}},` +
		`"grpc":{"numRetries":5,"perTryTimeout":"16s","backOff":{"baseInterval":"25ms","maxInterval":"250ms"}}}}]}`
	if string(js) != want {
		t.Errorf("default JSON\n got: %s\nwant: %s", js, want)
	}
}
