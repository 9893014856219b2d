package build_test

import "testing"

const zipkinTrace = `
type: MeshTrace
mesh: default
name: trace
spec:
  targetRef: {kind: Mesh}
  default:
    backends:
    - type: Zipkin
      zipkin: {url: "http://127.0.0.1:9411/api/v2/spans", traceId128bit: true}
    sampling: {overall: 80, client: "50.5", random: 10}
    tags:
    - {name: team, literal: core}
    - name: client
      header: {name: x-client, default: none}
`

const otelTrace = `
type: MeshTrace
mesh: default
name: trace
spec:
  targetRef: {kind: Mesh}
  default:
    backends:
    - type: OpenTelemetry
      openTelemetry: {endpoint: "127.0.0.1:4318"}
`

// Every HCM of web-1 (inbound and outbound) gets the tracing; the
// tcp_proxy of redis does not. The collector's cluster is added once.
func TestMeshTraceZipkinGolden(t *testing.T) {
	policyGolden(t, "meshtrace-zipkin", zipkinTrace, "", "web-1")
}

func TestMeshTraceOtelGolden(t *testing.T) {
	policyGolden(t, "meshtrace-otel", otelTrace, "", "backend-1")
}

func TestMeshTraceBadURL(t *testing.T) {
	policyError(t, `
type: MeshTrace
mesh: default
name: trace
spec:
  targetRef: {kind: Mesh}
  default:
    backends:
    - type: Zipkin
      zipkin: {url: "https://zipkin.example:9411/api/v2/spans"}
`, "web-1", "spec.default.backends[0].zipkin.url")
}
