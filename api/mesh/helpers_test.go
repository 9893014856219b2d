package mesh_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

// decode decodes a YAML manifest the way the API does.
func decode(t *testing.T, doc string) (*resource.Resource, error) {
	t.Helper()
	return kinds.Registry().Decode([]byte(doc))
}

// mustDecode decodes a manifest that must be valid, and checks that the
// spec marshals back to the content the user applied.
func mustDecode(t *testing.T, doc string) *resource.Resource {
	t.Helper()
	res, err := decode(t, doc)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	assertRoundTrip(t, doc, res)
	return res
}

// assertRoundTrip checks that json.Marshal of the decoded spec holds the
// same content as the manifest minus type, name, mesh and labels.
func assertRoundTrip(t *testing.T, doc string, res *resource.Resource) {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatalf("yaml: %v", err)
	}
	var want map[string]any
	if err := json.Unmarshal(js, &want); err != nil {
		t.Fatalf("json: %v", err)
	}
	for _, k := range []string{"type", "name", "mesh", "labels"} {
		delete(want, k)
	}
	out, err := json.Marshal(res.Spec)
	if err != nil {
		t.Fatalf("marshal spec: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("unmarshal spec: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		w, _ := json.Marshal(want)
		t.Errorf("spec does not round-trip:\n got: %s\nwant: %s", out, w)
	}
}

// violationsOf returns the violations of a decode error (failing the test
// when err is not a *validate.Error).
func violationsOf(t *testing.T, err error) []validate.Violation {
	t.Helper()
	if err == nil {
		t.Fatal("expected a validation error, got none")
	}
	var ve *validate.Error
	if !errors.As(err, &ve) {
		t.Fatalf("expected *validate.Error, got %T: %v", err, err)
	}
	return ve.Violations
}

// invalidCase is a manifest and the one violation it must produce.
type invalidCase struct {
	name   string
	doc    string
	field  string
	reason string // substring of the reason; "" to skip
}

// runInvalid decodes each case and checks that exactly the expected field
// is reported, with a reason containing the expected text.
func runInvalid(t *testing.T, cases []invalidCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(t, tc.doc)
			vs := violationsOf(t, err)
			if len(vs) != 1 || vs[0].Field != tc.field {
				t.Fatalf("want one violation at %s, got %+v", tc.field, vs)
			}
			if !strings.Contains(vs[0].Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", vs[0].Reason, tc.reason)
			}
		})
	}
}

// testdataDir is the folder of the end-to-end example manifests.
const testdataDir = "../../testdata/kuma"

// checkTestdata decodes testdata/kuma/valid/<kind>-*.yaml (each must be
// valid and round-trip) and testdata/kuma/invalid/<kind>-*.yaml (each must
// be rejected with exactly the field its "# expect-field:" line names).
func checkTestdata(t *testing.T, kindNames ...string) {
	t.Helper()
	for _, kind := range kindNames {
		valid, _ := filepath.Glob(filepath.Join(testdataDir, "valid", kind+"-*.yaml"))
		invalid, _ := filepath.Glob(filepath.Join(testdataDir, "invalid", kind+"-*.yaml"))
		if len(valid) == 0 || len(invalid) == 0 {
			t.Errorf("kind %s: want valid and invalid examples, found %d and %d", kind, len(valid), len(invalid))
		}
		for _, f := range valid {
			t.Run(filepath.Base(f), func(t *testing.T) {
				doc := readFile(t, f)
				res := mustDecode(t, doc)
				if !strings.EqualFold(res.Desc.Kind, kind) {
					t.Errorf("file %s holds a %s", f, res.Desc.Kind)
				}
			})
		}
		for _, f := range invalid {
			t.Run(filepath.Base(f), func(t *testing.T) {
				doc := readFile(t, f)
				first, _, _ := strings.Cut(doc, "\n")
				field, ok := strings.CutPrefix(first, "# expect-field: ")
				if !ok {
					t.Fatalf("first line must be '# expect-field: <path>', got %q", first)
				}
				_, err := decode(t, doc)
				vs := violationsOf(t, err)
				fields := make([]string, len(vs))
				for i, v := range vs {
					fields[i] = v.Field
				}
				if !slices.Equal(fields, []string{field}) {
					t.Errorf("want exactly %q, got %+v", field, vs)
				}
			})
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	// Files hold one document; a stray separator would hide a second one.
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "---" {
			t.Fatalf("%s: one resource per file", name)
		}
	}
	return string(b)
}
