package build_test

import "testing"

const retryPolicies = `
type: MeshRetry
mesh: default
name: retry-all
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Mesh}
    default:
      tcp:
        maxConnectAttempt: 4
      http:
        numRetries: 3
        perTryTimeout: 2s
        backOff:
          baseInterval: 10ms
          maxInterval: 1s
        rateLimitedBackOff:
          resetHeaders:
          - {name: retry-after, format: Seconds}
          - {name: x-ratelimit-reset, format: UnixTimestamp}
          maxInterval: 30s
        retryOn: [5xx, GatewayError, Reset, ConnectFailure, Retriable4xx, RefusedStream, "503", HttpMethodGet, HttpMethodPost]
        retriableResponseHeaders:
        - {name: x-retry, type: Present}
        - {name: x-status, value: busy}
        retriableRequestHeaders:
        - {name: x-idempotent, type: Prefix, value: "yes"}
        - {name: x-no-retry, type: Absent}
        - {name: x-tenant, type: RegularExpression, value: "t-[0-9]+"}
      grpc:
        numRetries: 2
        perTryTimeout: 1s
        retryOn: [Canceled, DeadlineExceeded, Internal, ResourceExhausted, Unavailable]
  - targetRef: {kind: MeshService, name: api}
    default:
      http:
        numRetries: 0
`

// web-1 gets every HTTP retry field on backend (http), gRPC ones on
// greeter, none on api (numRetries 0), max_connect_attempts on redis.
func TestMeshRetryGolden(t *testing.T) {
	policyGolden(t, "meshretry", retryPolicies, "", "web-1")
}

// Without retryOn, Kuma's default conditions apply.
func TestMeshRetryDefaultConditions(t *testing.T) {
	policyGolden(t, "meshretry-default-on", `
type: MeshRetry
mesh: default
name: plain
spec:
  to:
  - targetRef: {kind: Mesh}
    default:
      http: {numRetries: 1, backOff: {maxInterval: 100ms}}
      grpc: {numRetries: 1}
`, "", "web-1")
}

func TestMeshRetryUnsupported(t *testing.T) {
	policyError(t, `
type: MeshRetry
mesh: default
name: hosts
spec:
  to:
  - targetRef: {kind: Mesh}
    default:
      http:
        hostSelection:
        - predicate: OmitPreviousHosts
`, "web-1", "hostSelection is not supported")
	policyError(t, `
type: MeshRetry
mesh: default
name: ratelimited
spec:
  to:
  - targetRef: {kind: Mesh}
    default:
      http:
        retryOn: [EnvoyRatelimited]
`, "web-1", `retryOn "EnvoyRatelimited" is not supported`)
}
