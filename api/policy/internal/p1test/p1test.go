// Package p1test holds test helpers for the policy packages: decode a
// manifest the way the API does, check violations by field path, check
// that a decoded spec encodes back to what was applied, and run the shared
// example manifests under testdata/kuma.
package p1test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

// Decode decodes one manifest through the registry, as a PUT would.
func Decode(t testing.TB, manifest string) (*resource.Resource, error) {
	t.Helper()
	return kinds.Registry().Decode([]byte(manifest))
}

// MustDecode decodes a manifest that must be valid and checks that its spec
// encodes back to the spec that was applied.
func MustDecode(t testing.TB, manifest string) *resource.Resource {
	t.Helper()
	res, err := Decode(t, manifest)
	if err != nil {
		t.Fatalf("decoding valid manifest: %v\n%s", err, manifest)
	}
	RoundTrip(t, []byte(manifest), res)
	return res
}

// RoundTrip checks that json.Marshal of the decoded spec holds the same
// content as the manifest's spec.
func RoundTrip(t testing.TB, manifest []byte, res *resource.Resource) {
	t.Helper()
	js, err := yaml.YAMLToJSON(manifest)
	if err != nil {
		t.Fatalf("manifest is not YAML: %v", err)
	}
	var in map[string]any
	if err := json.Unmarshal(js, &in); err != nil {
		t.Fatalf("manifest is not an object: %v", err)
	}
	want := in["spec"]
	if want == nil {
		want = map[string]any{}
	}
	out, err := json.Marshal(res.Spec)
	if err != nil {
		t.Fatalf("encoding spec: %v", err)
	}
	var got any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("decoding encoded spec: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		w, _ := json.Marshal(want)
		t.Errorf("spec does not round-trip\n got: %s\nwant: %s", out, w)
	}
}

// Violations returns the violations of a decode error (failing the test if
// err is nil or of another type).
func Violations(t testing.TB, err error) []validate.Violation {
	t.Helper()
	var ve *validate.Error
	if !errors.As(err, &ve) {
		t.Fatalf("want a *validate.Error, got %v", err)
	}
	return ve.Violations
}

// ExpectViolation checks that err names field, with a reason containing
// reason (any reason when empty).
func ExpectViolation(t testing.TB, err error, field, reason string) {
	t.Helper()
	vs := Violations(t, err)
	for _, v := range vs {
		if v.Field == field && strings.Contains(v.Reason, reason) {
			return
		}
	}
	t.Errorf("no violation at %q with reason containing %q; got %+v", field, reason, vs)
}

// Case is an invalid manifest and the field its rejection must name.
type Case struct {
	Name     string
	Manifest string
	Field    string
	Reason   string
}

// RunInvalid decodes each case and checks its violation.
func RunInvalid(t *testing.T, cases []Case) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			_, err := Decode(t, c.Manifest)
			if err == nil {
				t.Fatalf("manifest was accepted:\n%s", c.Manifest)
			}
			ExpectViolation(t, err, c.Field, c.Reason)
		})
	}
}

// TestdataDir is the repository's testdata/kuma folder.
func TestdataDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "testdata", "kuma")
}

// RunTestdata checks the example manifests of one kind (lowercase, e.g.
// "meshtimeout"): every valid/<kind>-*.yaml must decode and round-trip,
// every invalid/<kind>-*.yaml must be rejected with a violation at the field
// its first line names ("# expect-field: spec.to[0]...").
func RunTestdata(t *testing.T, kind string) {
	t.Helper()
	dir := TestdataDir()
	valid, _ := filepath.Glob(filepath.Join(dir, "valid", kind+"-*.yaml"))
	invalid, _ := filepath.Glob(filepath.Join(dir, "invalid", kind+"-*.yaml"))
	if len(valid) == 0 || len(invalid) == 0 {
		t.Fatalf("want valid and invalid examples for %s in %s", kind, dir)
	}
	for _, f := range valid {
		t.Run("valid/"+filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			MustDecode(t, string(data))
		})
	}
	for _, f := range invalid {
		t.Run("invalid/"+filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			line, _, _ := bufio.NewReader(bytes.NewReader(data)).ReadLine()
			field, ok := strings.CutPrefix(string(line), "# expect-field: ")
			if !ok {
				t.Fatalf("first line must be '# expect-field: <path>', got %q", line)
			}
			_, err = Decode(t, string(data))
			if err == nil {
				t.Fatal("manifest was accepted")
			}
			ExpectViolation(t, err, strings.TrimSpace(field), "")
		})
	}
}
