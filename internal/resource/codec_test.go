package resource_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

func violations(t *testing.T, err error) map[string]string {
	t.Helper()
	var ve *validate.Error
	if !errors.As(err, &ve) {
		t.Fatalf("want a *validate.Error, got %v", err)
	}
	out := map[string]string{}
	for _, v := range ve.Violations {
		out[v.Field] = v.Reason
	}
	return out
}

func TestDecodeReportsShapeErrorsWithPaths(t *testing.T) {
	reg := kinds.Registry()
	_, err := reg.Decode([]byte(`
type: MeshTimeout
name: t
mesh: default
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Mesh}
    default:
      idleTimeout: 3
      bogus: true
`))
	v := violations(t, err)
	if !strings.Contains(v["spec.to[0].default.idleTimeout"], "string") {
		t.Errorf("idleTimeout of wrong type not reported: %v", v)
	}
	if v["spec.to[0].default.bogus"] != "unknown field" {
		t.Errorf("unknown field not reported: %v", v)
	}
}

func TestDecodeKinds(t *testing.T) {
	reg := kinds.Registry()
	if _, err := reg.Decode([]byte("type: Widget\nname: w\n")); !errors.Is(err, resource.ErrUnknownKind) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := reg.Decode([]byte("type: MeshService\nname: w\nmesh: default\n")); !errors.Is(err, resource.ErrNotSupported) {
		t.Errorf("unsupported kind: %v", err)
	}
	if _, err := reg.Decode([]byte("type: [")); !errors.Is(err, resource.ErrMalformed) {
		t.Errorf("malformed: %v", err)
	}
	if v := violations(t, func() error { _, err := reg.Decode([]byte("name: x\n")); return err }()); v["type"] == "" {
		t.Errorf("missing type: %v", v)
	}
	v := violations(t, func() error { _, err := reg.Decode([]byte("type: MeshRetry\nname: x\n")); return err }())
	if v["mesh"] == "" {
		t.Errorf("mesh-scoped kind without mesh: %v", v)
	}
}

func TestEncodeOrderAndShape(t *testing.T) {
	reg := kinds.Registry()
	res, err := reg.Decode([]byte("type: Mesh\nname: m\n"))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := resource.Encode(res)
	if !strings.HasPrefix(string(js), `{"type":"Mesh","name":"m","creationTime":`) {
		t.Fatalf("flat encoding: %s", js)
	}
	res, err = reg.Decode([]byte("type: MeshLoadBalancingStrategy\nname: r\nmesh: default\nspec: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	js, _ = resource.Encode(res)
	if !strings.HasPrefix(string(js), `{"type":"MeshLoadBalancingStrategy","mesh":"default","name":"r","creationTime":`) || !strings.Contains(string(js), `"labels":{}`) || !strings.HasSuffix(string(js), `"spec":{}}`) {
		t.Fatalf("policy encoding: %s", js)
	}
}

func TestRegistryNames(t *testing.T) {
	reg := kinds.Registry()
	for _, name := range []string{"MeshTimeout", "meshtimeout", "meshtimeouts", "MESHTIMEOUT"} {
		if d, ok := reg.ByName(name); !ok || d.Kind != "MeshTimeout" {
			t.Errorf("ByName(%q) = %v", name, d)
		}
	}
	if d, ok := reg.ByPath("global-secrets"); !ok || d.Kind != "GlobalSecret" {
		t.Errorf("global-secrets path: %v", d)
	}
	if got := len(reg.All()); got != 24 {
		t.Errorf("%d kinds, want 24 (8 flat + 16 policies)", got)
	}
}

func TestDisplayName(t *testing.T) {
	for kind, want := range map[string]string{"MeshHTTPRoute": "Mesh HTTP Route", "MeshTLS": "Mesh TLS", "Dataplane": "Dataplane", "ZoneIngress": "Zone Ingress"} {
		if got := (&resource.Descriptor{Kind: kind}).DisplayName(); got != want {
			t.Errorf("DisplayName(%s) = %q, want %q", kind, got, want)
		}
	}
}
