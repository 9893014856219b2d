package kds

import (
	"testing"

	"google.golang.org/protobuf/types/known/anypb"
)

// FuzzDecode feeds the receiver's decoder what a peer could send: it must
// refuse or accept without panicking, and what it accepts must hash.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"type":"MeshTimeout","name":"t","mesh":"m","labels":{"a":"b"},"spec":{"x":1},"version":"v"}`), "MeshTimeout")
	f.Add([]byte(`{"type":"Mesh","name":"m","spec":null}`), "Mesh")
	f.Add([]byte(`{"type":"Mesh"}`), "Mesh")
	f.Add([]byte(`[]`), "Dataplane")
	f.Add([]byte(`{"type":"Dataplane","name":"d","spec":{"a":1e400}}`), "Dataplane")
	f.Fuzz(func(t *testing.T, data []byte, kind string) {
		r, err := decode(&anypb.Any{TypeUrl: wireTypeURL, Value: data}, kind)
		if err != nil {
			return
		}
		if r.Kind != kind || r.Name == "" {
			t.Fatalf("accepted %+v for kind %q", r, kind)
		}
		_, _ = contentVersion(r)
		m, n := splitWireName(wireName(r.Mesh, r.Name))
		if r.Mesh != "" && (m != r.Mesh || n != r.Name) && !containsSlash(r.Mesh) {
			t.Fatalf("wire name of %q/%q splits into %q/%q", r.Mesh, r.Name, m, n)
		}
	})
}

func containsSlash(s string) bool {
	for i := range len(s) {
		if s[i] == '/' {
			return true
		}
	}
	return false
}
