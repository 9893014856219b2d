package ctl_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const templated = `# a mesh, a timeout in it and a dataplane, filled from -v
type: Mesh
name: {{ mesh }}
mtls:
  enabledBackend: ca-1
  backends:
    - name: ca-1
      type: builtin
---
type: MeshTimeout
name: {{mesh}}-timeout
mesh: {{ mesh }}
spec:
  targetRef:
    kind: Mesh
  to:
    - targetRef:
        kind: Mesh
      default:
        connectionTimeout: {{ timeout }}
---
# comment-only documents are skipped
---
type: Dataplane
mesh: {{ mesh }}
name: web-1
networking:
  address: {{ address }}
  inbound:
    - port: 8080
      tags:
        kuma.io/service: web
        kuma.io/protocol: http
`

func TestApplyMultiDocumentWithVars(t *testing.T) {
	h := newHarness(t)
	file := filepath.Join(t.TempDir(), "demo.yaml")
	if err := os.WriteFile(file, []byte(templated), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"apply", "-f", file, "-v", "mesh=demo", "--var", "timeout=3s", "-v", "address=10.0.0.7"}
	r := h.mustRun("", args...)
	want := "Mesh \"demo\" created\nMeshTimeout \"demo-timeout\" created\nDataplane \"web-1\" created\n"
	if r.stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, want)
	}
	obj, err := h.api.GetObject(t.Context(), "meshtimeouts", "demo", "demo-timeout")
	if err != nil {
		t.Fatal(err)
	}
	to := obj["spec"].(map[string]any)["to"].([]any)[0].(map[string]any)
	if got := to["default"].(map[string]any)["connectionTimeout"]; got != "3s" {
		t.Errorf("connectionTimeout = %v, want 3s", got)
	}

	// Applying again updates.
	r = h.mustRun("", args...)
	want = "Mesh \"demo\" configured\nMeshTimeout \"demo-timeout\" configured\nDataplane \"web-1\" configured\n"
	if r.stdout != want {
		t.Errorf("second apply stdout:\n%s\nwant:\n%s", r.stdout, want)
	}
}

func TestApplyFromStdinAndExampleManifests(t *testing.T) {
	h := newHarness(t)
	for _, f := range []string{"mesh-2.yaml", "dataplane-1.yaml", "meshtimeout-1.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "kuma", "valid", f))
		if err != nil {
			t.Skipf("example manifest: %v", err)
		}
		r := h.mustRun(string(data), "apply", "-f", "-")
		if !strings.HasSuffix(r.stdout, " created\n") {
			t.Errorf("%s: stdout %q", f, r.stdout)
		}
	}
	if !h.exists("meshes", "", "mesh-permissive") || !h.exists("dataplanes", "default", "backend-1") || !h.exists("meshtimeouts", "default", "timeout-global") {
		t.Error("the example manifests were not all stored")
	}
}

func TestApplyMissingVarIsAnErrorBeforeSending(t *testing.T) {
	h := newHarness(t)
	r := h.mustFail(templated, "apply", "-f", "-", "-v", "mesh=demo")
	wantContains(t, "stderr", r.stderr, `"address"`, `"timeout"`, "-v NAME=VALUE", "nothing was applied")
	if r.stdout != "" {
		t.Errorf("stdout should be empty, got %q", r.stdout)
	}
	if h.exists("meshes", "", "demo") {
		t.Error("the first document was sent although a later one misses a variable")
	}
}

func TestApplyDryRunSendsNothing(t *testing.T) {
	h := newHarness(t)
	h.env["TRELLIS_API_URL"] = deadURL(t) // any request would fail
	r := h.mustRun(templated, "apply", "-f", "-", "-v", "mesh=demo", "-v", "timeout=5s", "-v", "address=10.1.1.1", "--dry-run")
	docs := strings.Split(r.stdout, "---\n")
	if len(docs) != 3 {
		t.Fatalf("want 3 YAML documents, got %d:\n%s", len(docs), r.stdout)
	}
	var tm map[string]any
	if err := yaml.Unmarshal([]byte(docs[1]), &tm); err != nil {
		t.Fatal(err)
	}
	if tm["name"] != "demo-timeout" || tm["mesh"] != "demo" {
		t.Errorf("resolved document = %v", tm)
	}
	wantContains(t, "dry-run output", r.stdout, "connectionTimeout: 5s", "address: 10.1.1.1")
	if !strings.HasPrefix(docs[1], "type: MeshTimeout\nname: demo-timeout\nmesh: demo\nspec:\n") {
		t.Errorf("dry-run should keep the document's field order:\n%s", docs[1])
	}
}

func TestApplyValidationErrorShowsFieldPaths(t *testing.T) {
	h := newHarness(t)
	input := `type: MeshTimeout
name: ok
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
    - targetRef:
        kind: Mesh
      default:
        idleTimeout: 10s
---
type: MeshTimeout
name: broken
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
    - targetRef:
        kind: Mesh
      default:
        connectionTimeout: soon
---
type: MeshTimeout
name: never-sent
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
    - targetRef:
        kind: Mesh
      default:
        idleTimeout: 10s
`
	r := h.mustFail(input, "apply", "-f", "-")
	if r.stdout != "MeshTimeout \"ok\" created\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	wantContains(t, "stderr", r.stderr,
		`Error: document 2 (line 13): applying MeshTimeout "broken" in mesh "default": `,
		"\n* spec.to[0].default.connectionTimeout: ",
		"The 1 document(s) before it were applied and stay applied; the 1 after it were not sent.")
	if !h.exists("meshtimeouts", "default", "ok") || h.exists("meshtimeouts", "default", "never-sent") {
		t.Error("want the first document applied and the third not sent")
	}
}

func TestApplyClientSideChecks(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ name, input, want string }{
		{"no mesh", "type: MeshTimeout\nname: x\nspec: {}\n", `MeshTimeout "x" has no mesh`},
		{"unknown type", "type: MeshTimeot\nname: x\nmesh: default\n", `unknown type "MeshTimeot"; valid types are: Dataplane, GlobalSecret, Mesh,`},
		{"not supported", "type: MeshService\nname: x\nmesh: default\n", "MeshService is not supported yet by Trellis"},
		{"no name", "type: Mesh\n", "Mesh has no name"},
		{"bad yaml", "type: Mesh\nname: [x\n", "document 1 (line 1)"},
		{"empty", "# nothing\n---\n", "no resources to apply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.mustFail(tc.input, "apply", "-f", "-")
			wantContains(t, "stderr", r.stderr, tc.want)
		})
	}
}

func TestApplyDirectory(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "01-mesh.yaml"), []byte("type: Mesh\nname: dirmesh\n"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "02-secret.yml"), []byte("type: Secret\nname: s1\nmesh: dirmesh\ndata: YWJj\n"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not yaml"), 0o600)
	r := h.mustRun("", "apply", "-f", dir)
	if r.stdout != "Mesh \"dirmesh\" created\nSecret \"s1\" created\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
}

func TestApplyPrintsWarnings(t *testing.T) {
	h := newHarness(t)
	input := `type: MeshTimeout
name: old-style
mesh: default
spec:
  targetRef:
    kind: MeshService
    name: backend
  from:
    - targetRef:
        kind: Mesh
      default:
        idleTimeout: 5s
`
	r := h.mustRun(input, "apply", "-f", "-")
	if r.stdout != "MeshTimeout \"old-style\" created\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	wantContains(t, "stderr", r.stderr, "Warning: MeshTimeout \"old-style\": spec.from: ")
}

func TestApplyFromURL(t *testing.T) {
	h := newHarness(t)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/mesh.yaml" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "type: Mesh\nname: {{ name }}\n")
	}))
	defer files.Close()
	r := h.mustRun("", "apply", "-f", files.URL+"/mesh.yaml", "-v", "name=remote")
	if r.stdout != "Mesh \"remote\" created\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	r = h.mustFail("", "apply", "-f", files.URL+"/missing.yaml")
	wantContains(t, "stderr", r.stderr, "404 Not Found")
}
