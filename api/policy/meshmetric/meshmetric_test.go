package meshmetric_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/api/policy/meshmetric"
)

func TestDecodesTypedSpec(t *testing.T) {
	res := mustDecode(t, `
type: MeshMetric
name: m
mesh: default
spec:
  targetRef: {kind: MeshGateway, name: edge, tags: {port: http-80}}
  default:
    sidecar: {regex: "envoy_.*", includeUnused: true}
    backends:
      - type: OpenTelemetry
        openTelemetry:
          backendRef: {kind: MeshOpenTelemetryBackend, labels: {kuma.io/display-name: otel}}
`)
	spec := res.Spec.(*meshmetric.Spec)
	if *spec.Default.Sidecar.Regex != "envoy_.*" || (*spec.Default.Backends)[0].OpenTelemetry.BackendRef == nil {
		t.Errorf("spec = %+v", spec.Default)
	}
	// A spec without default is valid and stays without one.
	mustDecode(t, "type: MeshMetric\nname: m\nmesh: default\nspec:\n  targetRef: {kind: Mesh}\n")
}

func TestRejects(t *testing.T) {
	cases := []struct {
		name, spec, field, reason string
	}{
		{"bad regex", `
  default: {sidecar: {regex: "(["}}
`, "spec.default.sidecar.regex", "invalid regex"},
		{"bad selector regex", `
  default: {sidecar: {profiles: {include: [{type: Regex, match: "(["}]}}}
`, "spec.default.sidecar.profiles.include[0].match", "invalid regex"},
		{"bad selector type", `
  default: {sidecar: {profiles: {exclude: [{type: Glob, match: "a*"}]}}}
`, "spec.default.sidecar.profiles.exclude[0].type", "unknown value"},
		{"prometheus port", `
  default: {backends: [{type: Prometheus, prometheus: {port: 0}}]}
`, "spec.default.backends[0].prometheus.port", "range"},
		{"prometheus tls mode", `
  default: {backends: [{type: Prometheus, prometheus: {tls: {mode: Mutual}}}]}
`, "spec.default.backends[0].prometheus.tls.mode", "unknown value"},
		{"prometheus missing", `
  default: {backends: [{type: Prometheus}]}
`, "spec.default.backends[0].prometheus", "must be defined"},
		{"unknown backend", `
  default: {backends: [{type: Graphite}]}
`, "spec.default.backends[0].type", "unknown value"},
		{"otel both", `
  default:
    backends:
      - type: OpenTelemetry
        openTelemetry: {endpoint: "c:4317", backendRef: {kind: MeshOpenTelemetryBackend, name: c}}
`, "spec.default.backends[0].openTelemetry", "only one"},
		{"otel ref without name or labels", `
  default:
    backends:
      - type: OpenTelemetry
        openTelemetry: {backendRef: {kind: MeshOpenTelemetryBackend}}
`, "spec.default.backends[0].openTelemetry.backendRef", "exactly one"},
		{"zero refresh", `
  default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: "c:4317", refreshInterval: 0s}}]}
`, "spec.default.backends[0].openTelemetry.refreshInterval", "greater than 0"},
		{"top kind", `
  targetRef: {kind: MeshHTTPRoute, name: r}
`, "spec.targetRef.kind", "not supported"},
		{"rules section", `
  rules: []
`, "spec.rules", "unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectViolation(t, "type: MeshMetric\nname: m\nmesh: default\nspec:\n"+tc.spec, tc.field, tc.reason)
		})
	}
}
