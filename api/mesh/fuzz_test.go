package mesh_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

// FuzzDecodeFlat feeds arbitrary documents to the codec for the kinds of
// this package: decoding must never panic, and whatever is accepted must
// be accepted again after a write and read through the stored form.
func FuzzDecodeFlat(f *testing.F) {
	for _, kind := range []string{"mesh", "dataplane", "zoneingress", "zoneegress", "meshgateway"} {
		for _, dir := range []string{"valid", "invalid"} {
			files, _ := filepath.Glob(filepath.Join(testdataDir, dir, kind+"-*.yaml"))
			for _, name := range files {
				if b, err := os.ReadFile(name); err == nil {
					f.Add(b)
				}
			}
		}
	}
	reg := kinds.Registry()
	f.Fuzz(func(t *testing.T, doc []byte) {
		res, err := reg.Decode(doc)
		if err != nil {
			return
		}
		stored, err := resource.MarshalSpec(res.Spec)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		spec, err := resource.UnmarshalSpec(res.Desc, stored)
		if err != nil {
			t.Fatalf("unmarshal stored spec: %v", err)
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("stored spec no longer valid: %v\n%s", err, stored)
		}
	})
}
