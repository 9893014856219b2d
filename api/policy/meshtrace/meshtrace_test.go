package meshtrace_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/api/policy/meshtrace"
)

func TestDecodesTypedSpec(t *testing.T) {
	res := mustDecode(t, `
type: MeshTrace
name: t
mesh: default
spec:
  default:
    backends:
      - type: Zipkin
        zipkin: {url: "http://zipkin:9411/api/v2/spans", traceId128bit: false, sharedSpanContext: false}
    sampling: {overall: "12.5", random: 0}
`)
	spec := res.Spec.(*meshtrace.Spec)
	z := (*spec.Default.Backends)[0].Zipkin
	if z.TraceId128Bit == nil || *z.TraceId128Bit || z.SharedSpanContext == nil || *z.SharedSpanContext {
		t.Errorf("explicit false lost: %+v", z)
	}
	s := spec.Default.Sampling
	if !s.Overall.IsString() || s.Overall.String() != "12.5" || s.Random.IsString() || s.Random.String() != "0" {
		t.Errorf("sampling = %+v", s)
	}
}

func TestRejects(t *testing.T) {
	cases := []struct {
		name, spec, field, reason string
	}{
		{"no backends", `
  default: {}
`, "spec.default.backends", "must be defined"},
		{"sampling not a number", `
  default: {backends: [], sampling: {random: "abc"}}
`, "spec.default.sampling.random", "not a number"},
		{"sampling fraction without quotes", `
  default: {backends: [], sampling: {client: 0.5}}
`, "spec.default.sampling.client", "integer or a string"},
		{"negative sampling", `
  default: {backends: [], sampling: {overall: -1}}
`, "spec.default.sampling.overall", "between 0 and 100"},
		{"tag with both", `
  default: {backends: [], tags: [{name: a, literal: b, header: {name: c}}]}
`, "spec.default.tags[0]", "only one"},
		{"tag with neither", `
  default: {backends: [], tags: [{name: a}]}
`, "spec.default.tags[0]", "only one"},
		{"tag without name", `
  default: {backends: [], tags: [{literal: b}]}
`, "spec.default.tags[0].name", "must not be empty"},
		{"zipkin empty url", `
  default: {backends: [{type: Zipkin, zipkin: {url: ""}}]}
`, "spec.default.backends[0].zipkin.url", "must not be empty"},
		{"zipkin api version", `
  default: {backends: [{type: Zipkin, zipkin: {url: "http://z:9411", apiVersion: grpc}}]}
`, "spec.default.backends[0].zipkin.apiVersion", "unknown value"},
		{"datadog without port", `
  default: {backends: [{type: Datadog, datadog: {url: "http://agent"}}]}
`, "spec.default.backends[0].datadog.url", "port must be defined"},
		{"datadog without settings", `
  default: {backends: [{type: Datadog}]}
`, "spec.default.backends[0].datadog", "must be defined"},
		{"otel bad scheme", `
  default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: "ftp://c:4317"}}]}
`, "spec.default.backends[0].openTelemetry.endpoint", "scheme"},
		{"otel nothing", `
  default: {backends: [{type: OpenTelemetry, openTelemetry: {}}]}
`, "spec.default.backends[0].openTelemetry", "exactly one"},
		{"unknown backend", `
  default: {backends: [{type: Jaeger}]}
`, "spec.default.backends[0].type", "unknown value"},
		{"gateway tags", `
  targetRef: {kind: MeshGateway, name: gw, tags: {port: a}}
  default: {backends: []}
`, "spec.targetRef.tags", "must not be set"},
		{"route target", `
  targetRef: {kind: MeshHTTPRoute, name: r}
  default: {backends: []}
`, "spec.targetRef.kind", "not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectViolation(t, "type: MeshTrace\nname: t\nmesh: default\nspec:\n"+tc.spec, tc.field, tc.reason)
		})
	}
}
