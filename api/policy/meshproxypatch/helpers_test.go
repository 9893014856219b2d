package meshproxypatch_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

// kindPrefix names this kind's files in testdata/kuma/{valid,invalid}.
const kindPrefix = "meshproxypatch-"

// testdataDir is the shared folder of Kuma example manifests.
var testdataDir = filepath.Join("..", "..", "..", "testdata", "kuma")

// mustDecode decodes a valid manifest and checks that its spec encodes back
// to the same JSON the user wrote.
func mustDecode(t *testing.T, manifest string) *resource.Resource {
	t.Helper()
	res, err := kinds.Registry().Decode([]byte(manifest))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	js, err := yaml.YAMLToJSON([]byte(manifest))
	if err != nil {
		t.Fatalf("yaml: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatalf("json: %v", err)
	}
	out, err := json.Marshal(res.Spec)
	if err != nil {
		t.Fatalf("marshal spec: %v", err)
	}
	var got any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("unmarshal spec: %v", err)
	}
	want := doc["spec"]
	if want == nil {
		want = map[string]any{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("spec does not round-trip:\n got: %s\nwant: %s", out, mustJSON(t, want))
	}
	return res
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// violations decodes a manifest that must be rejected and returns its
// violations.
func violations(t *testing.T, manifest string) []validate.Violation {
	t.Helper()
	_, err := kinds.Registry().Decode([]byte(manifest))
	if err == nil {
		t.Fatalf("decode succeeded, want a validation error")
	}
	var ve *validate.Error
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *validate.Error", err)
	}
	return ve.Violations
}

// expectViolation checks that decoding manifest fails with a violation at
// field whose reason contains reason.
func expectViolation(t *testing.T, manifest, field, reason string) {
	t.Helper()
	vs := violations(t, manifest)
	for _, v := range vs {
		if v.Field == field && strings.Contains(v.Reason, reason) {
			return
		}
	}
	t.Errorf("no violation at %s containing %q; got %+v", field, reason, vs)
}

// TestKumaExamples decodes this kind's shared example manifests: the valid
// ones must decode and round-trip, each invalid one must be rejected naming
// the field its first line announces.
func TestKumaExamples(t *testing.T) {
	for _, dir := range []string{"valid", "invalid"} {
		files, err := filepath.Glob(filepath.Join(testdataDir, dir, kindPrefix+"*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no %s examples for %s", dir, kindPrefix)
		}
		for _, f := range files {
			t.Run(dir+"/"+filepath.Base(f), func(t *testing.T) {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if dir == "valid" {
					mustDecode(t, string(data))
					return
				}
				first, _, _ := bytes.Cut(data, []byte("\n"))
				field, ok := strings.CutPrefix(string(first), "# expect-field: ")
				if !ok {
					t.Fatalf("first line %q is not an expect-field comment", first)
				}
				expectViolation(t, string(data), strings.TrimSpace(field), "")
			})
		}
	}
}
