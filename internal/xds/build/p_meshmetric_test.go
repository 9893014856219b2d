package build_test

import "testing"

func init() { trafficKinds = append(trafficKinds, "MeshMetric") }

const meshMetric = `
type: MeshMetric
mesh: default
name: metrics
spec:
  targetRef: {kind: Mesh}
  default:
    sidecar:
      profiles:
        appendProfiles: [{name: Basic}]
        include: [{type: Prefix, match: envoy_server_}]
    applications:
    - {name: app, path: /metrics, port: 8081}
    - {port: 9102, address: 127.0.0.1}
    backends:
    - type: Prometheus
      prometheus: {clientId: main, port: 5670, path: /metrics}
    - type: Prometheus
      prometheus: {port: 5671, path: /stats}
    - type: OpenTelemetry
      openTelemetry: {endpoint: "127.0.0.1:4317"}
`

const meshMetricDefaults = `
type: MeshMetric
mesh: default
name: metrics
spec:
  targetRef: {kind: Mesh}
  default:
    sidecar: {includeUnused: true}
    backends:
    - type: Prometheus
      prometheus: {}
`

// Two Prometheus listeners (the OpenTelemetry backend is not built), the
// Basic profile as the stats filter, the applications in the metadata.
func TestMeshMetricGolden(t *testing.T) {
	policyGolden(t, "meshmetric", meshMetric, "", "web-1")
}

// Kuma's defaults: clientId default-backend, port 5670, path /metrics; all
// stats, unused ones included.
func TestMeshMetricDefaultsGolden(t *testing.T) {
	policyGolden(t, "meshmetric-defaults", meshMetricDefaults, "STRICT", "redis-1")
}

func TestMeshMetricErrors(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{`{type: Prometheus, prometheus: {port: 8080}}`, "spec.default.backends[0].prometheus.port: 8080 is already used by inbound"},
		{`{type: Prometheus, prometheus: {tls: {mode: ProvidedTLS}}}`, "spec.default.backends[0].prometheus.tls.mode: ProvidedTLS is not supported yet"},
		{`{type: Prometheus, prometheus: {path: "/a b"}}`, "spec.default.backends[0].prometheus.path"},
	} {
		policyError(t, `
type: MeshMetric
mesh: default
name: metrics
spec:
  targetRef: {kind: Mesh}
  default:
    backends:
    - `+tc.conf+`
`, "web-1", tc.want)
	}
	policyError(t, `
type: MeshMetric
mesh: default
name: metrics
spec:
  targetRef: {kind: Mesh}
  default:
    backends:
    - {type: Prometheus, prometheus: {}}
    - {type: Prometheus, prometheus: {clientId: b}}
`, "web-1", "spec.default.backends[1].prometheus.port: 5670 is already used by the MeshMetric backend default-backend")
}
