package meshaccesslog_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/api/policy/meshaccesslog"
)

func TestDecodesTypedSpec(t *testing.T) {
	res := mustDecode(t, `
type: MeshAccessLog
name: log
mesh: default
spec:
  targetRef: {kind: MeshGateway, name: edge, tags: {port: http-80}}
  to:
    - targetRef: {kind: MeshHTTPRoute, name: route-1}
      default:
        backends:
          - type: OpenTelemetry
            openTelemetry:
              endpoint: collector
              body: "%START_TIME% %KUMA_MESH%"
`)
	spec := res.Spec.(*meshaccesslog.Spec)
	otel := (*spec.To[0].Default.Backends)[0].OpenTelemetry
	if otel.Endpoint != "collector" || string(otel.Body) != `"%START_TIME% %KUMA_MESH%"` {
		t.Errorf("otel = %+v", otel)
	}
}

func TestRejects(t *testing.T) {
	cases := []struct {
		name, spec, field, reason string
	}{
		{"rules with from", `
  from: [{targetRef: {kind: Mesh}, default: {backends: []}}]
  rules: [{default: {backends: []}}]
`, "spec", "must be empty when 'rules'"},
		{"missing backends", `
  to: [{targetRef: {kind: Mesh}}]
`, "spec.to[0].default.backends", "must be defined"},
		{"from kind", `
  from: [{targetRef: {kind: MeshService, name: a}, default: {backends: []}}]
`, "spec.from[0].targetRef.kind", "not supported"},
		{"to kind", `
  to: [{targetRef: {kind: Dataplane, name: a}, default: {backends: []}}]
`, "spec.to[0].targetRef.kind", "not supported"},
		{"file without settings", `
  rules: [{default: {backends: [{type: File}]}}]
`, "spec.rules[0].default.backends[0].file", "must be defined"},
		{"relative path", `
  rules: [{default: {backends: [{type: File, file: {path: logs/access.log}}]}}]
`, "spec.rules[0].default.backends[0].file.path", "valid path"},
		{"plain format without template", `
  rules: [{default: {backends: [{type: File, file: {path: /tmp/a, format: {type: Plain}}}]}}]
`, "spec.rules[0].default.backends[0].file.format.plain", "must be defined"},
		{"empty json format", `
  rules: [{default: {backends: [{type: Tcp, tcp: {address: "logs:1", format: {type: Json, json: []}}}]}}]
`, "spec.rules[0].default.backends[0].tcp.format.json", "must not be empty"},
		{"json key with quote", `
  rules: [{default: {backends: [{type: File, file: {path: /tmp/a, format: {type: Json, json: [{key: '"', value: x}]}}}]}}]
`, "spec.rules[0].default.backends[0].file.format.json[0]", "not a valid JSON object"},
		{"json empty value", `
  rules: [{default: {backends: [{type: File, file: {path: /tmp/a, format: {type: Json, json: [{key: a}]}}}]}}]
`, "spec.rules[0].default.backends[0].file.format.json[0].value", "cannot be empty"},
		{"otel neither endpoint nor ref", `
  rules: [{default: {backends: [{type: OpenTelemetry, openTelemetry: {}}]}}]
`, "spec.rules[0].default.backends[0].openTelemetry", "exactly one"},
		{"otel both", `
  rules:
    - default:
        backends:
          - type: OpenTelemetry
            openTelemetry:
              endpoint: c:4317
              backendRef: {kind: MeshOpenTelemetryBackend, name: c}
`, "spec.rules[0].default.backends[0].openTelemetry", "only one"},
		{"otel endpoint URL", `
  rules: [{default: {backends: [{type: OpenTelemetry, openTelemetry: {endpoint: "http://c:4317/v1"}}]}}]
`, "spec.rules[0].default.backends[0].openTelemetry.endpoint", "host:port"},
		{"otel ref kind", `
  rules:
    - default:
        backends:
          - type: OpenTelemetry
            openTelemetry: {backendRef: {kind: MeshService, name: c}}
`, "spec.rules[0].default.backends[0].openTelemetry.backendRef.kind", "MeshOpenTelemetryBackend"},
		{"otel reserved prefix", `
  rules:
    - default:
        backends:
          - type: OpenTelemetry
            openTelemetry: {endpoint: c, attributes: [{key: otel.x, value: v}]}
`, "spec.rules[0].default.backends[0].openTelemetry.attributes[0].key", "reserved"},
		{"otel key with space", `
  rules:
    - default:
        backends:
          - type: OpenTelemetry
            openTelemetry: {endpoint: c, attributes: [{key: my key, value: v}]}
`, "spec.rules[0].default.backends[0].openTelemetry.attributes[0].key", "lowercase"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectViolation(t, "type: MeshAccessLog\nname: l\nmesh: default\nspec:\n"+tc.spec, tc.field, tc.reason)
		})
	}
}
