package meshhttproute_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/policy/meshhttproute"
	"github.com/trellis-mesh/trellis/internal/policy/meshtcproute"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// loadSnapshot reads the Dataplanes and policies of a YAML file (documents
// separated by "---" lines), validated as the API validates them.
func loadSnapshot(t *testing.T, file string) *proxymodel.MeshSnapshot {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	snap := &proxymodel.MeshSnapshot{Mesh: "default", Policies: map[string][]proxymodel.PolicyItem{}}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		res, err := kinds.Registry().Decode([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if dp, ok := res.Spec.(*mesh.Dataplane); ok {
			snap.Dataplanes = append(snap.Dataplanes, proxymodel.NamedDataplane{Name: res.Meta.Name, Labels: res.Meta.Labels, Spec: dp})
			continue
		}
		snap.Policies[res.Desc.Kind] = append(snap.Policies[res.Desc.Kind], proxymodel.PolicyItem{Name: res.Meta.Name, Labels: res.Meta.Labels, Spec: res.Spec})
	}
	return snap
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/policy/meshhttproute -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs; if the change is intended run go test ./internal/policy/meshhttproute -update\ngot:\n%s", path, got)
	}
}

// outbounds builds the named proxies and renders their outbounds.
func outbounds(t *testing.T, snap *proxymodel.MeshSnapshot, names ...string) []byte {
	t.Helper()
	ix := proxymodel.NewIndex(snap, meshhttproute.Applier{}, meshtcproute.Applier{})
	out := map[string][]proxymodel.Outbound{}
	for _, name := range names {
		p, err := ix.Build(name)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = p.Outbounds
	}
	js, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(js, '\n')
}

// TestApplierGolden applies the route policies of each testdata/*.yaml to
// web-1 and other-1 and compares their outbounds (routes, TCP backends,
// route clusters with their endpoints) with testdata/*.golden.json. The
// result must not depend on the order the policies are listed in.
func TestApplierGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test inputs: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			snap := loadSnapshot(t, file)
			got := outbounds(t, snap, "web-1", "other-1")
			for kind := range snap.Policies {
				slices.Reverse(snap.Policies[kind])
			}
			if again := outbounds(t, loadSnapshotReversed(snap), "web-1", "other-1"); !bytes.Equal(got, again) {
				t.Fatalf("the result depends on the order of the policies:\n%s\n%s", got, again)
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".golden.json", got)
		})
	}
}

// loadSnapshotReversed returns a copy of snap (whose policy lists the
// caller reversed) so that a fresh index is built.
func loadSnapshotReversed(snap *proxymodel.MeshSnapshot) *proxymodel.MeshSnapshot {
	c := *snap
	return &c
}

// TestFingerprintFollowsRouteBackends checks that a proxy's fingerprint
// changes with the endpoints of a service only its routes name.
func TestFingerprintFollowsRouteBackends(t *testing.T) {
	snap := loadSnapshot(t, "testdata/routes.yaml")
	before, ok := proxymodel.NewIndex(snap, meshhttproute.Applier{}, meshtcproute.Applier{}).Fingerprint("web-1")
	if !ok {
		t.Fatal("no fingerprint")
	}
	moved := *snap
	moved.Dataplanes = slices.Clone(snap.Dataplanes)
	for i, dp := range moved.Dataplanes {
		if dp.Name == "backend-canary-1" {
			spec := *dp.Spec
			n := *spec.Networking
			n.Address = "10.0.0.44"
			spec.Networking = &n
			moved.Dataplanes[i].Spec = &spec
		}
	}
	after, _ := proxymodel.NewIndex(&moved, meshhttproute.Applier{}, meshtcproute.Applier{}).Fingerprint("web-1")
	if before == after {
		t.Fatal("moving an endpoint of backend-canary, which only web's routes name, left web-1's fingerprint unchanged")
	}
}
