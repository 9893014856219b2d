package policy_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// input is a test file: Dataplanes and policies of any kinds.
type input struct {
	dataplanes []policy.Dataplane
	policies   map[string][]policy.Policy
}

func load(t *testing.T, path string) input {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in := input{policies: map[string][]policy.Policy{}}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		res, err := kinds.Registry().Decode([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if dp, ok := res.Spec.(*mesh.Dataplane); ok {
			in.dataplanes = append(in.dataplanes, policy.Dataplane{Name: res.Meta.Name, Labels: res.Meta.Labels, Spec: dp})
			continue
		}
		kind := res.Desc.Kind
		in.policies[kind] = append(in.policies[kind], policy.Policy{Name: res.Meta.Name, Labels: res.Meta.Labels, Spec: res.Spec})
	}
	return in
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
		t.Fatalf("%v (run go test ./internal/policy -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs; if the change is intended run go test ./internal/policy -update\ngot:\n%s", path, got)
	}
}

// TestGolden matches every policy kind of each testdata/*.yaml against each
// of its Dataplanes and compares the result with testdata/*.golden.json.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test inputs: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			in := load(t, file)
			out := map[string]map[string]*policy.Matched{}
			for _, dp := range in.dataplanes {
				out[dp.Name] = map[string]*policy.Matched{}
				for kind, ps := range in.policies {
					m, err := policy.Match(dp, ps)
					if err != nil {
						t.Fatal(err)
					}
					// Input order does not matter.
					m2, err := policy.Match(dp, reversed(ps))
					if err != nil {
						t.Fatal(err)
					}
					if a, b := mustJSON(t, m), mustJSON(t, m2); !bytes.Equal(a, b) {
						t.Fatalf("%s: the result depends on the input order:\n%s\n%s", kind, a, b)
					}
					out[dp.Name][kind] = m
				}
			}
			js, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".golden.json", append(js, '\n'))
		})
	}
}

func reversed(ps []policy.Policy) []policy.Policy {
	out := make([]policy.Policy, len(ps))
	for i, p := range ps {
		out[len(ps)-1-i] = p
	}
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
