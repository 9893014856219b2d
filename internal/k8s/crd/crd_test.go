package crd_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/internal/k8s/crd"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

// TestGeneratedUpToDate fails when internal/k8s/crd/generated differs from
// what the generator writes now: run `go run ./internal/k8s/crd/gen`.
func TestGeneratedUpToDate(t *testing.T) {
	want, err := crd.Generate(kinds.Registry())
	if err != nil {
		t.Fatal(err)
	}
	got := crd.FileNames()
	var wantNames []string
	for n := range want {
		wantNames = append(wantNames, n)
	}
	slices.Sort(wantNames)
	if !slices.Equal(got, wantNames) {
		t.Fatalf("generated files %v, generator writes %v: run `go run ./internal/k8s/crd/gen`", got, wantNames)
	}
	for i, b := range crd.All() {
		if !bytes.Equal(b, want[got[i]]) {
			t.Errorf("%s is stale: run `go run ./internal/k8s/crd/gen`", got[i])
		}
	}
}

// TestKumaLayout checks the scope and names Kuma gives its CRDs.
func TestKumaLayout(t *testing.T) {
	type crdDoc struct {
		Metadata struct{ Name string }
		Spec     struct {
			Group string
			Scope string
			Names struct{ Kind, Plural string }
		}
	}
	scopes := map[string]string{}
	for _, b := range crd.All() {
		var d crdDoc
		if err := yaml.Unmarshal(b, &d); err != nil {
			t.Fatalf("parse: %v", err)
		}
		if d.Spec.Group != "kuma.io" || d.Metadata.Name != d.Spec.Names.Plural+".kuma.io" {
			t.Errorf("%s: group %q", d.Metadata.Name, d.Spec.Group)
		}
		scopes[d.Spec.Names.Kind] = d.Spec.Scope
	}
	for kind, scope := range map[string]string{
		"Mesh": "Cluster", "MeshGateway": "Cluster", "Zone": "Cluster",
		"Dataplane": "Namespaced", "ZoneIngress": "Namespaced", "ZoneEgress": "Namespaced",
		"MeshTimeout": "Namespaced", "MeshTrafficPermission": "Namespaced",
	} {
		if scopes[kind] != scope {
			t.Errorf("%s: scope %q, want %q", kind, scopes[kind], scope)
		}
	}
	for _, k := range []string{"Secret", "GlobalSecret"} {
		if _, ok := scopes[k]; ok {
			t.Errorf("%s has a CRD; Kuma stores it as a core v1 Secret", k)
		}
	}
	for _, d := range kinds.Registry().All() {
		if _, isSecret := crd.SecretType(d.Kind); !isSecret && scopes[d.Kind] == "" {
			t.Errorf("kind %s has no CRD", d.Kind)
		}
	}
	if !strings.HasPrefix(string(crd.All()[0]), "# Generated") {
		t.Error("generated file lacks its header")
	}
}
