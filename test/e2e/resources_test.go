package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/internal/testing/pgtest"
)

// manifest is one example file of testdata/kuma.
type manifest struct {
	file        string
	raw         []byte
	doc         map[string]any
	expectField string
}

func loadManifests(t *testing.T, dir string) []manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "kuma", dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in testdata/kuma/%s: %v", dir, err)
	}
	sort.Strings(files)
	var out []manifest
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m := manifest{file: filepath.Base(f), raw: raw}
		first, _ := bufio.NewReader(strings.NewReader(string(raw))).ReadString('\n')
		if field, ok := strings.CutPrefix(strings.TrimSpace(first), "# expect-field:"); ok {
			m.expectField = strings.TrimSpace(field)
		}
		if err := yaml.Unmarshal(raw, &m.doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, m)
	}
	// Meshes first: other examples may live in them.
	sort.SliceStable(out, func(i, j int) bool { return out[i].doc["type"] == "Mesh" && out[j].doc["type"] != "Mesh" })
	return out
}

func (m manifest) kind() string { s, _ := m.doc["type"].(string); return s }
func (m manifest) name() string { s, _ := m.doc["name"].(string); return s }
func (m manifest) mesh() string { s, _ := m.doc["mesh"].(string); return s }

// normalize drops what the control plane adds (times, kuma.io/ labels it
// computed, an empty labels map) so a read-back compares with the input.
func normalize(doc, input map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range doc {
		out[k] = v
	}
	delete(out, "creationTime")
	delete(out, "modificationTime")
	if labels, ok := out["labels"].(map[string]any); ok {
		inLabels, _ := input["labels"].(map[string]any)
		kept := map[string]any{}
		for k, v := range labels {
			if _, given := inLabels[k]; given || !strings.HasPrefix(k, "kuma.io/") {
				kept[k] = v
			}
		}
		if len(kept) == 0 && inLabels == nil {
			delete(out, "labels")
		} else {
			out["labels"] = kept
		}
	}
	return out
}

// checkReadBack gets every manifest with trellisctl -o yaml and compares.
func checkReadBack(t *testing.T, cp *controlPlane, ms []manifest) {
	t.Helper()
	for _, m := range ms {
		args := []string{"get", strings.ToLower(m.kind()), m.name(), "-o", "yaml"}
		if m.mesh() != "" {
			args = append(args, "-m", m.mesh())
		}
		out := cp.mustCtl("", args...)
		var got map[string]any
		if err := yaml.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%s: trellisctl get printed invalid YAML: %v\n%s", m.file, err, out)
		}
		if got := normalize(got, m.doc); !reflect.DeepEqual(got, m.doc) {
			gotJS, _ := json.MarshalIndent(got, "", "  ")
			wantJS, _ := json.MarshalIndent(m.doc, "", "  ")
			t.Errorf("%s: read back differs from what was applied\n got: %s\nwant: %s", m.file, gotJS, wantJS)
		}
	}
}

// storeBackends are the persistent stores a user runs the control plane on.
func storeBackends(t *testing.T) map[string]func(t *testing.T) map[string]string {
	return map[string]func(t *testing.T) map[string]string{
		"sqlite": func(t *testing.T) map[string]string {
			return map[string]string{"TRELLIS_STORE_TYPE": "sqlite"}
		},
		"postgres": func(t *testing.T) map[string]string {
			return map[string]string{"TRELLIS_STORE_TYPE": "postgres", "TRELLIS_STORE_POSTGRES_URL": pgtest.Start(t)}
		},
	}
}

// Kuma 2.14's documentation examples are accepted by `trellisctl apply`,
// read back with the same content, and survive a restart.
func TestKumaExamplesApplyReadBackAndSurviveRestart(t *testing.T) {
	valid := loadManifests(t, "valid")
	for name, backend := range storeBackends(t) {
		t.Run(name, func(t *testing.T) {
			cp := startCP(t, backend(t))
			for _, m := range valid {
				out := cp.mustCtl("", "apply", "-f", filepath.Join("..", "..", "testdata", "kuma", "valid", m.file))
				if !strings.Contains(out, m.name()) {
					t.Errorf("%s: apply output does not name the resource: %q", m.file, out)
				}
			}
			checkReadBack(t, cp, valid)
			cp.Restart()
			checkReadBack(t, cp, valid)
		})
	}
}

// Invalid manifests are refused with a 400 whose invalid_parameters name
// the field, and trellisctl shows that field and exits non-zero.
func TestInvalidManifestsAreRefusedWithFieldPaths(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})
	for _, m := range loadManifests(t, "invalid") {
		if m.expectField == "" {
			t.Errorf("%s: first line must be '# expect-field: <path>'", m.file)
			continue
		}
		path := "/meshes/" + m.mesh() + "/" + pathOf(t, cp, m.kind()) + "/" + m.name()
		if m.mesh() == "" {
			path = "/" + pathOf(t, cp, m.kind()) + "/" + m.name()
		}
		req, _ := http.NewRequest(http.MethodPut, cp.URL+path, strings.NewReader(string(m.raw)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s: PUT %s answered %d, want 400: %s", m.file, path, resp.StatusCode, body)
			continue
		}
		var e struct {
			InvalidParameters []struct{ Field, Reason string } `json:"invalid_parameters"`
		}
		_ = json.Unmarshal(body, &e)
		found := false
		for _, p := range e.InvalidParameters {
			found = found || p.Field == m.expectField
		}
		if !found {
			t.Errorf("%s: 400 does not name field %s: %s", m.file, m.expectField, body)
		}
		_, stderr, err := cp.ctl("", "apply", "-f", filepath.Join("..", "..", "testdata", "kuma", "invalid", m.file))
		if err == nil || !strings.Contains(stderr, m.expectField) {
			t.Errorf("%s: trellisctl apply: err=%v, stderr does not name %s:\n%s", m.file, err, m.expectField, stderr)
		}
		resp, err = http.Get(cp.URL + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 404 {
				t.Errorf("%s: a refused resource was stored (GET %s = %d)", m.file, path, resp.StatusCode)
			}
		}
	}
}

var pathCache = map[string]string{}

// pathOf finds a kind's REST path from the control plane's /_resources.
func pathOf(t *testing.T, cp *controlPlane, kind string) string {
	if p, ok := pathCache[kind]; ok {
		return p
	}
	resp, err := http.Get(cp.URL + "/_resources")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Resources []struct{ Name, Path string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	for _, d := range r.Resources {
		pathCache[d.Name] = d.Path
	}
	if p, ok := pathCache[kind]; ok {
		return p
	}
	t.Fatalf("kind %q not in /_resources", kind)
	return ""
}

// Two control planes on one PostgreSQL: what one writes the other lists,
// and the other's change-event stream saw it.
func TestTwoControlPlanesShareOnePostgres(t *testing.T) {
	url := pgtest.Start(t)
	a := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "postgres", "TRELLIS_STORE_POSTGRES_URL": url})
	b := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "postgres", "TRELLIS_STORE_POSTGRES_URL": url, "TRELLIS_LOG_LEVEL": "debug"})
	a.mustCtl("type: MeshRetry\nname: shared-retry\nmesh: default\nspec:\n  targetRef: {kind: Mesh}\n  to:\n  - targetRef: {kind: Mesh}\n    default:\n      http: {numRetries: 2}\n", "apply", "-f", "-")
	out := b.mustCtl("", "get", "meshretries", "-o", "json")
	if !strings.Contains(out, `"shared-retry"`) {
		t.Fatalf("the second control plane does not list the resource: %s", out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(b.log.String(), "name=shared-retry") {
		if time.Now().After(deadline) {
			t.Fatalf("the second control plane's event stream never saw the change; its log:\n%s", b.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SIGTERM stops the control plane gracefully in under 5 s.
func TestSIGTERMStopsQuickly(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "sqlite"})
	if took := cp.Stop(); took > 5*time.Second {
		t.Fatalf("trellis-cp took %s to stop after SIGTERM", took)
	}
}

// The README's command works with no setup: the data dir and the SQLite
// file are created, and the default mesh exists.
func TestFirstStartCreatesDataDirAndDefaultMesh(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "not", "there", "yet")
	cp := startCP(t, map[string]string{"TRELLIS_DATA_DIR": dataDir})
	if _, err := os.Stat(filepath.Join(dataDir, "trellis.db")); err != nil {
		t.Fatalf("no SQLite file in the data dir: %v", err)
	}
	out := cp.mustCtl("", "get", "meshes")
	if !strings.Contains(out, "default") {
		t.Fatalf("no default mesh: %s", out)
	}
	cp.mustCtl("", "get", "meshtimeout", "mesh-timeout-all-default", "-m", "default")
}
