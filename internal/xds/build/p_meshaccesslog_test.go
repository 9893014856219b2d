package build_test

import "testing"

// The observability kinds are matched like the traffic policies.
func init() { trafficKinds = append(trafficKinds, "MeshAccessLog", "MeshTrace") }

const accessLogPolicies = `
type: MeshAccessLog
mesh: default
name: logs
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Mesh}
    default:
      backends:
      - type: File
        file: {path: /var/log/access.log}
      - type: File
        file:
          path: /var/log/access.json
          format:
            type: Json
            json:
            - {key: start, value: "%START_TIME(%s)%"}
            - {key: status, value: "%RESPONSE_CODE%"}
            - {key: src, value: "%KUMA_SOURCE_SERVICE%"}
            - {key: dst, value: "%KUMA_DESTINATION_SERVICE%"}
      - type: Tcp
        tcp:
          address: 127.0.0.1:5000
          format: {type: Plain, plain: "%KUMA_MESH% %UPSTREAM_HOST% %REQ(:PATH)%"}
      - type: OpenTelemetry
        openTelemetry:
          endpoint: 127.0.0.1:4318
          attributes: [{key: mesh, value: "%KUMA_MESH%"}]
  from:
  - targetRef: {kind: Mesh}
    default:
      backends:
      - type: File
        file: {path: /var/log/inbound.log}
`

// web-1 (http outbounds to backend, greeter, api; tcp to redis) and
// redis-1 (a tcp inbound) get the access logs, and the OpenTelemetry
// collector's cluster.
func TestMeshAccessLogGolden(t *testing.T) {
	policyGolden(t, "meshaccesslog", accessLogPolicies, "", "web-1", "redis-1")
}

func TestMeshAccessLogUnknownOperator(t *testing.T) {
	policyError(t, `
type: MeshAccessLog
mesh: default
name: logs
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Mesh}
    default:
      backends:
      - type: File
        file: {path: /tmp/a, format: {type: Plain, plain: "%NOT_AN_OPERATOR%"}}
`, "web-1", "backends[0].file.format.plain: at position 0: unknown command operator %NOT_AN_OPERATOR%")
}

func TestMeshAccessLogOtelHostname(t *testing.T) {
	policyError(t, `
type: MeshAccessLog
mesh: default
name: logs
spec:
  targetRef: {kind: Mesh}
  from:
  - targetRef: {kind: Mesh}
    default:
      backends:
      - type: OpenTelemetry
        openTelemetry: {endpoint: "collector:4318"}
`, "backend-1", "must be an IP address")
}
