package build_test

import (
	"encoding/json"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/api/policy/meshcircuitbreaker"
	"github.com/trellis-mesh/trellis/api/policy/meshretry"
	"github.com/trellis-mesh/trellis/api/policy/meshtimeout"
)

// The default policies every new mesh gets (MeshTimeout, MeshRetry,
// MeshCircuitBreaker) translate cleanly, on HTTP, HTTP/2, gRPC and TCP
// outbounds and on HTTP and TCP inbounds.
func TestDefaultPoliciesGolden(t *testing.T) {
	docs := defaultPolicyDocs(t, "MeshTimeout", meshtimeout.DefaultName("default"), meshtimeout.DefaultSpec()) + "\n---\n" +
		defaultPolicyDocs(t, "MeshTimeout", meshtimeout.DefaultGatewayName("default"), meshtimeout.DefaultGatewaySpec()) + "\n---\n" +
		defaultPolicyDocs(t, "MeshRetry", meshretry.DefaultName("default"), meshretry.DefaultSpec()) + "\n---\n" +
		defaultPolicyDocs(t, "MeshCircuitBreaker", meshcircuitbreaker.DefaultName("default"), meshcircuitbreaker.DefaultSpec())
	policyGolden(t, "defaults", docs, "", "web-1", "redis-1")
}

// defaultPolicyDocs renders a default policy as the YAML document the
// registry decodes.
func defaultPolicyDocs(t *testing.T, kind, name string, spec any) string {
	t.Helper()
	js, err := json.Marshal(map[string]any{"type": kind, "mesh": "default", "name": name, "spec": spec})
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.JSONToYAML(js)
	if err != nil {
		t.Fatal(err)
	}
	return string(y)
}

const timeoutPolicies = `
type: MeshTimeout
mesh: default
name: everything
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Mesh}
    default:
      connectionTimeout: 2s
      idleTimeout: 20m
      http:
        requestTimeout: 500ms
        streamIdleTimeout: 10s
        maxStreamDuration: 1m
        maxConnectionDuration: 30m
  - targetRef: {kind: MeshService, name: redis}
    default:
      idleTimeout: 0s
  from:
  - targetRef: {kind: Mesh}
    default:
      connectionTimeout: 3s
      idleTimeout: 40m
      http:
        requestTimeout: 0s
        streamIdleTimeout: 20s
        maxStreamDuration: 2m
        maxConnectionDuration: 1h
        requestHeadersTimeout: 100ms
---
type: MeshTimeout
mesh: default
name: backend-rules
spec:
  targetRef: {kind: MeshService, name: backend}
  rules:
  - default:
      http:
        requestTimeout: 7s
`

// Every MeshTimeout field lands where the contract says: outbound
// clusters, routes and tcp_proxy (web-1), inbound local cluster, HCM,
// route and tcp_proxy (web-1 http, redis-1 tcp); rules[] override from[]
// (backend-1's inbound request timeout).
func TestMeshTimeoutGolden(t *testing.T) {
	policyGolden(t, "meshtimeout", timeoutPolicies, "", "web-1", "redis-1", "backend-1")
}
