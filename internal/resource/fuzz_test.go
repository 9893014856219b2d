package resource_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

// seeds adds every example manifest of the repository to the corpus.
func seeds(f *testing.F) {
	files, _ := filepath.Glob("../../testdata/kuma/*/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"type":"Mesh","name":"m","mtls":{"enabledBackend":"x"}}`))
	f.Add([]byte("type: MeshTimeout\nname: t\nmesh: default\nspec:\n  to:\n  - targetRef: {kind: Mesh}\n    default: {idleTimeout: 1s}\n"))
	f.Add([]byte("type: Dataplane\nname: d\nmesh: default\nnetworking:\n  address: 1.2.3.4\n  inbound:\n  - port: 80\n    tags: {kuma.io/service: web}\n"))
}

// FuzzDecode: any input either fails cleanly or decodes to a resource whose
// encoding decodes again to the same encoding (no panic, no drift).
func FuzzDecode(f *testing.F) {
	seeds(f)
	reg := kinds.Registry()
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := reg.Decode(data)
		if err != nil {
			return
		}
		roundTrip(t, reg, res)
	})
}

// FuzzDecodeForPath exercises the PUT path: the document is checked against
// a path's kind, mesh and name.
func FuzzDecodeForPath(f *testing.F) {
	seeds(f)
	reg := kinds.Registry()
	all := reg.All()
	f.Fuzz(func(t *testing.T, data []byte) {
		d := all[len(data)%len(all)]
		mesh := ""
		if d.Scope == resource.ScopeMesh {
			mesh = "default"
		}
		res, err := resource.DecodeForPath(d, data, mesh, "fuzzed")
		if err != nil {
			return
		}
		if res.Meta.Name != "fuzzed" || res.Meta.Mesh != mesh || res.Desc != d {
			t.Fatalf("decoded %s %q in mesh %q, path said %s %q in %q", res.Desc.Kind, res.Meta.Name, res.Meta.Mesh, d.Kind, "fuzzed", mesh)
		}
		roundTrip(t, reg, res)
	})
}

func roundTrip(t *testing.T, reg *resource.Registry, res *resource.Resource) {
	t.Helper()
	first, err := resource.Encode(res)
	if err != nil {
		t.Fatalf("encoding a decoded resource: %v", err)
	}
	again, err := reg.Decode(first)
	if err != nil {
		t.Fatalf("re-decoding our own encoding failed: %v\n%s", err, first)
	}
	second, err := resource.Encode(again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("encoding drifted:\n%s\n%s", first, second)
	}
}
