package meshtimeout_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/api/policy/internal/p1test"
	"github.com/trellis-mesh/trellis/api/policy/meshtimeout"
)

func TestExamples(t *testing.T) { p1test.RunTestdata(t, "meshtimeout") }

func TestInvalid(t *testing.T) {
	p1test.RunInvalid(t, []p1test.Case{
		{
			Name: "negative idle timeout",
			Manifest: `
type: MeshTimeout
name: t
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {idleTimeout: -1s}`,
			Field: "spec.to[0].default.idleTimeout", Reason: "negative",
		},
		{
			Name: "nothing defined",
			Manifest: `
type: MeshTimeout
name: t
mesh: default
spec:
  targetRef: {kind: Mesh}`,
			Field: "spec", Reason: "at least one of",
		},
		{
			Name: "empty http section",
			Manifest: `
type: MeshTimeout
name: t
mesh: default
spec:
  rules:
    - default:
        http: {}`,
			Field: "spec.rules[0].default.http", Reason: "at least one timeout",
		},
		{
			Name: "from with gateway top-level",
			Manifest: `
type: MeshTimeout
name: t
mesh: default
spec:
  targetRef: {kind: MeshGateway, name: edge}
  from:
    - targetRef: {kind: Mesh}
      default: {idleTimeout: 1s}`,
			Field: "spec.from", Reason: "must not be defined",
		},
		{
			Name: "MeshService in to with gateway top-level",
			Manifest: `
type: MeshTimeout
name: t
mesh: default
spec:
  targetRef: {kind: MeshGateway, name: edge}
  to:
    - targetRef: {kind: MeshService, name: backend}
      default: {idleTimeout: 1s}`,
			Field: "spec.to[0].targetRef.kind", Reason: "not supported",
		},
		{
			Name: "maxStreamDuration under a MeshHTTPRoute",
			Manifest: `
type: MeshTimeout
name: t
mesh: default
spec:
  targetRef: {kind: MeshHTTPRoute, name: r}
  to:
    - targetRef: {kind: Mesh}
      default:
        http: {maxStreamDuration: 1s}`,
			Field: "spec.to[0].default.http.maxStreamDuration", Reason: "MeshHTTPRoute",
		},
		{
			Name: "unknown top-level kind",
			Manifest: `
type: MeshTimeout
name: t
mesh: default
spec:
  targetRef: {kind: MeshTrafficPermission}
  to:
    - targetRef: {kind: Mesh}
      default: {idleTimeout: 1s}`,
			Field: "spec.targetRef.kind", Reason: "unknown value",
		},
		{
			Name: "sectionName on an outbound-only policy",
			Manifest: `
type: MeshTimeout
name: t
mesh: default
spec:
  targetRef: {kind: Dataplane, labels: {app: web}, sectionName: http}
  to:
    - targetRef: {kind: Mesh}
      default: {idleTimeout: 1s}`,
			Field: "spec.targetRef.sectionName", Reason: "inbound",
		},
		{
			Name: "duration of the wrong JSON type",
			Manifest: `
type: MeshTimeout
name: t
mesh: default
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {idleTimeout: 10}`,
			Field: "spec.to[0].default.idleTimeout", Reason: "string",
		},
	})
}

func TestDefaults(t *testing.T) {
	defaults := meshtimeout.Defaults("default")
	if len(defaults) != 2 {
		t.Fatalf("want 2 default MeshTimeouts, got %d", len(defaults))
	}
	for _, name := range []string{"mesh-timeout-all-default", "mesh-gateways-timeout-all-default"} {
		spec, ok := defaults[name]
		if !ok {
			t.Fatalf("missing default %q", name)
		}
		if err := spec.Validate(); err != nil {
			t.Errorf("default %s is invalid: %v", name, err)
		}
	}
	sidecar := defaults["mesh-timeout-all-default"]
	if got := sidecar.From[0].Default.ConnectionTimeout.Parse(); got != 10*time.Second {
		t.Errorf("inbound connectionTimeout = %v, want 10s", got)
	}
	if got := sidecar.To[0].Default.HTTP.RequestTimeout.Parse(); got != 15*time.Second {
		t.Errorf("outbound requestTimeout = %v, want 15s", got)
	}
	js, err := json.Marshal(meshtimeout.DefaultGatewaySpec())
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"targetRef":{"kind":"Mesh","proxyTypes":["Gateway"]},` +
		`"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"1h0m0s","http":{"streamIdleTimeout":"5s"}}}],` +
		`"from":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"5m0s","http":{"streamIdleTimeout":"5s","requestHeadersTimeout":"500ms"}}}]}`
	if string(js) != want {
		t.Errorf("gateway default JSON\n got: %s\nwant: %s", js, want)
	}
	// Each call returns a fresh spec that callers may change.
	meshtimeout.DefaultSpec().To[0].Default.IdleTimeout = nil
	if meshtimeout.DefaultSpec().To[0].Default.IdleTimeout == nil {
		t.Error("DefaultSpec shares state between calls")
	}
}
