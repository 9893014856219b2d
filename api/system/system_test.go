package system_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/api/system"
	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

// mustDecode decodes a valid manifest and checks that its spec marshals
// back to the content applied (minus type, name, mesh, labels).
func mustDecode(t *testing.T, doc string) *resource.Resource {
	t.Helper()
	res, err := kinds.Registry().Decode([]byte(doc))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var want, got map[string]any
	if err := json.Unmarshal(js, &want); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"type", "name", "mesh", "labels"} {
		delete(want, k)
	}
	out, err := json.Marshal(res.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("spec does not round-trip: got %s", out)
	}
	return res
}

// fieldsOf decodes an invalid manifest and returns the violated fields.
func fieldsOf(t *testing.T, doc string) []string {
	t.Helper()
	_, err := kinds.Registry().Decode([]byte(doc))
	var ve *validate.Error
	if !errors.As(err, &ve) {
		t.Fatalf("want *validate.Error, got %v", err)
	}
	var out []string
	for _, v := range ve.Violations {
		out = append(out, v.Field)
	}
	return out
}

func TestTestdata(t *testing.T) {
	dir := "../../testdata/kuma"
	for _, kind := range []string{"secret", "globalsecret", "zone"} {
		valid, _ := filepath.Glob(filepath.Join(dir, "valid", kind+"-*.yaml"))
		invalid, _ := filepath.Glob(filepath.Join(dir, "invalid", kind+"-*.yaml"))
		if len(valid) == 0 || len(invalid) == 0 {
			t.Errorf("%s: want valid and invalid examples", kind)
		}
		for _, f := range valid {
			t.Run(filepath.Base(f), func(t *testing.T) {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if res := mustDecode(t, string(b)); !strings.EqualFold(res.Desc.Kind, kind) {
					t.Errorf("holds a %s", res.Desc.Kind)
				}
			})
		}
		for _, f := range invalid {
			t.Run(filepath.Base(f), func(t *testing.T) {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				first, _, _ := strings.Cut(string(b), "\n")
				field, ok := strings.CutPrefix(first, "# expect-field: ")
				if !ok {
					t.Fatalf("first line must be '# expect-field: <path>', got %q", first)
				}
				if got := fieldsOf(t, string(b)); !slices.Equal(got, []string{field}) {
					t.Errorf("want exactly %q, got %v", field, got)
				}
			})
		}
	}
}

func TestSecretBytes(t *testing.T) {
	for _, data := range []string{"dGVzdAo=", "dGVzdAo", "_-8=", "_-8"} {
		res := mustDecode(t, "type: Secret\nname: s\nmesh: default\ndata: "+data+"\n")
		if _, err := res.Spec.(*system.Secret).Bytes(); err != nil {
			t.Errorf("%s: %v", data, err)
		}
	}
	res := mustDecode(t, "type: GlobalSecret\nname: g\ndata: dGVzdAo=\n")
	if b, err := res.Spec.(*system.GlobalSecret).Bytes(); err != nil || string(b) != "test\n" {
		t.Errorf("GlobalSecret.Bytes = %q, %v", b, err)
	}
}

func TestSecretInvalid(t *testing.T) {
	for name, tc := range map[string]struct{ doc, field string }{
		"data not a string":     {"type: Secret\nname: s\nmesh: default\ndata: 42\n", "data"},
		"secret without mesh":   {"type: Secret\nname: s\ndata: dGVzdAo=\n", "mesh"},
		"global secret in mesh": {"type: GlobalSecret\nname: g\nmesh: default\ndata: dGVzdAo=\n", "mesh"},
		"unknown field":         {"type: Secret\nname: s\nmesh: default\ndata: dGVzdAo=\nvalue: x\n", "value"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := fieldsOf(t, tc.doc); !slices.Equal(got, []string{tc.field}) {
				t.Errorf("want %q, got %v", tc.field, got)
			}
		})
	}
}

func TestZoneEnabled(t *testing.T) {
	on := mustDecode(t, "type: Zone\nname: z\n").Spec.(*system.Zone)
	off := mustDecode(t, "type: Zone\nname: z\nenabled: false\n").Spec.(*system.Zone)
	if !on.IsEnabled() || off.IsEnabled() {
		t.Error("a zone is enabled unless enabled: false")
	}
}
