package build_test

import "testing"

const healthCheckPolicies = `
type: MeshHealthCheck
mesh: default
name: hc-all
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Mesh}
    default:
      interval: 2s
      timeout: 1s
      unhealthyThreshold: 3
      healthyThreshold: 2
      initialJitter: 100ms
      intervalJitter: 200ms
      intervalJitterPercent: 10
      noTrafficInterval: 5s
      reuseConnection: false
      healthyPanicThreshold: 30
      tcp:
        send: ping
        receive: [pong]
      http:
        path: /health
        expectedStatuses: [200, 204]
        requestHeadersToAdd:
          add: [{name: x-probe, value: "a,b"}]
          set: [{name: x-check, value: "1"}]
      grpc:
        serviceName: greeter.v1
        authority: greeter.local
  - targetRef: {kind: MeshService, name: api}
    default:
      http: {disabled: true}
`

// backend (http) gets the HTTP check, api (http2, HTTP disabled) falls
// back to TCP, greeter (grpc) the gRPC check, redis the TCP check with
// its payloads; all with the shared settings and panic threshold.
func TestMeshHealthCheckGolden(t *testing.T) {
	policyGolden(t, "meshhealthcheck", healthCheckPolicies, "", "web-1")
}

// Without interval, timeout and thresholds Kuma's defaults are sent; a
// service whose protocol has no configured check gets none.
func TestMeshHealthCheckDefaults(t *testing.T) {
	policyGolden(t, "meshhealthcheck-defaults", `
type: MeshHealthCheck
mesh: default
name: hc-http-only
spec:
  to:
  - targetRef: {kind: Mesh}
    default:
      http: {}
`, "", "web-1")
}

func TestMeshHealthCheckUnsupported(t *testing.T) {
	policyError(t, `
type: MeshHealthCheck
mesh: default
name: log
spec:
  to:
  - targetRef: {kind: Mesh}
    default:
      eventLogPath: /tmp/hc.log
      tcp: {}
`, "web-1", "eventLogPath is not supported")
}
