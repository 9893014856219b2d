package meshpassthrough_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/api/policy/meshpassthrough"
)

func TestDecodesTypedSpec(t *testing.T) {
	res := mustDecode(t, `
type: MeshPassthrough
name: p
mesh: default
spec:
  default:
    passthroughMode: Matched
    appendMatch:
      - {type: IP, value: "fd00::1"}
`)
	spec := res.Spec.(*meshpassthrough.Spec)
	m := spec.Default.AppendMatch[0]
	if m.Port != nil || m.Protocol != "" || *spec.Default.PassthroughMode != meshpassthrough.ModeMatched {
		t.Errorf("spec = %+v", spec.Default)
	}
}

// TestRejectsLikeKuma follows Kuma's own list of invalid matches.
func TestRejectsLikeKuma(t *testing.T) {
	vs := violations(t, `
type: MeshPassthrough
name: p
mesh: default
spec:
  targetRef: {kind: Mesh}
  default:
    appendMatch:
      - {type: test, value: 1.2.3.4, port: 0, protocol: "1"}
      - {type: Domain, value: 1.2.3.4, port: 1, protocol: tcp}
      - {type: IP, value: example.com, port: 1, protocol: tls}
      - {type: Domain, value: example.com, port: 999, protocol: tcp}
      - {type: CIDR, value: 1.2.3.4, port: 999, protocol: tcp}
      - {type: Domain, value: example.com, port: 8080, protocol: http}
      - {type: Domain, value: example.com, port: 8080, protocol: http2}
      - {type: Domain, value: "*w.example.com", port: 9090, protocol: http2}
      - {type: Domain, value: google.com, port: 10000, protocol: http}
      - {type: Domain, value: google.com, port: 10000, protocol: http}
      - {type: Domain, value: "*.example.com", protocol: http}
`)
	want := []string{
		"spec.default.appendMatch[0].protocol",
		"spec.default.appendMatch[0].port",
		"spec.default.appendMatch[0].type",
		"spec.default.appendMatch[1].protocol",
		"spec.default.appendMatch[1].value",
		"spec.default.appendMatch[2].value",
		"spec.default.appendMatch[3].protocol",
		"spec.default.appendMatch[4].value",
		"spec.default.appendMatch[6].port",
		"spec.default.appendMatch[7].value",
		"spec.default.appendMatch[9].value",
		"spec.default.appendMatch[10].port",
	}
	got := map[string]bool{}
	for _, v := range vs {
		got[v.Field] = true
	}
	for _, f := range want {
		if !got[f] {
			t.Errorf("missing violation at %s", f)
		}
	}
	if len(got) != len(want) {
		t.Errorf("violations = %+v", vs)
	}
}

func TestRejectsTargetRef(t *testing.T) {
	expectViolation(t, `
type: MeshPassthrough
name: p
mesh: default
spec:
  targetRef: {kind: MeshService, name: backend}
`, "spec.targetRef.kind", "not supported")
}
