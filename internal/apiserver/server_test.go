package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/meshdefaults"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store/memory"
)

type env struct {
	t   *testing.T
	url string
	mgr *manager.Manager
}

func newEnv(t *testing.T) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mgr := manager.New(memory.New(), kinds.Registry())
	mgr.OnCreate(meshdefaults.Hook(mgr, log))
	if err := meshdefaults.EnsureDefaultMesh(context.Background(), mgr); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(apiserver.New(mgr, apiserver.Info{Version: "test", InstanceID: "i-1", ClusterID: "c-1"}, nil, log).Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, url: srv.URL, mgr: mgr}
}

func (e *env) do(method, path, body string) (int, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && json.Unmarshal(raw, &out) != nil {
		e.t.Fatalf("%s %s: response is not a JSON object: %s", method, path, raw)
	}
	return resp.StatusCode, out
}

func (e *env) expect(method, path, body string, status int) map[string]any {
	e.t.Helper()
	got, out := e.do(method, path, body)
	if got != status {
		e.t.Fatalf("%s %s: status %d, want %d: %v", method, path, got, status, out)
	}
	return out
}

func invalidFields(out map[string]any) []string {
	var fields []string
	params, _ := out["invalid_parameters"].([]any)
	for _, p := range params {
		fields = append(fields, p.(map[string]any)["field"].(string))
	}
	return fields
}

func TestIndexAndResources(t *testing.T) {
	e := newEnv(t)
	idx := e.expect("GET", "/", "", 200)
	for _, k := range []string{"hostname", "product", "version", "instanceId", "clusterId", "gui"} {
		if _, ok := idx[k]; !ok {
			t.Errorf("GET / lacks %q: %v", k, idx)
		}
	}
	res := e.expect("GET", "/_resources", "", 200)
	paths := map[string]bool{}
	for _, r := range res["resources"].([]any) {
		paths[r.(map[string]any)["path"].(string)] = true
	}
	for _, p := range []string{"meshes", "dataplanes", "meshtlses", "meshloadbalancingstrategies", "global-secrets", "zoneingresses", "meshproxypatches"} {
		if !paths[p] {
			t.Errorf("/_resources lacks %s", p)
		}
	}
	e.expect("GET", "/ready", "", 200)
	e.expect("GET", "/healthy", "", 200)
}

func TestMeshLifecycleWithDefaults(t *testing.T) {
	e := newEnv(t)
	e.expect("PUT", "/meshes/demo", "type: Mesh\nname: demo\n", 201)
	e.expect("PUT", "/meshes/demo", `{"type":"Mesh","name":"demo"}`, 200)
	got := e.expect("GET", "/meshes/demo", "", 200)
	if got["type"] != "Mesh" || got["name"] != "demo" || got["creationTime"] == nil {
		t.Fatalf("GET mesh: %v", got)
	}
	if _, has := got["mesh"]; has {
		t.Fatalf("a Mesh has no mesh field: %v", got)
	}
	// Defaults of a new mesh: signing key and the initial policies.
	e.expect("GET", "/meshes/demo/secrets/dataplane-token-signing-key-demo-1", "", 200)
	for _, p := range []string{"meshtimeouts/mesh-timeout-all-demo", "meshtimeouts/mesh-gateways-timeout-all-demo", "meshretries/mesh-retry-all-demo", "meshcircuitbreakers/mesh-circuit-breaker-all-demo"} {
		e.expect("GET", "/meshes/demo/"+p, "", 200)
	}
	// Deleting the mesh deletes what it owns.
	e.expect("DELETE", "/meshes/demo", "", 200)
	e.expect("GET", "/meshes/demo/meshretries/mesh-retry-all-demo", "", 404)
	e.expect("GET", "/meshes/demo", "", 404)
	e.expect("DELETE", "/meshes/demo", "", 404)
}

func TestSkipCreatingInitialPolicies(t *testing.T) {
	e := newEnv(t)
	e.expect("PUT", "/meshes/bare", "type: Mesh\nname: bare\nskipCreatingInitialPolicies: ['*']\n", 201)
	list := e.expect("GET", "/meshes/bare/meshtimeouts", "", 200)
	if list["total"].(float64) != 0 {
		t.Fatalf("skip [*] still created timeouts: %v", list)
	}
	e.expect("PUT", "/meshes/some", "type: Mesh\nname: some\nskipCreatingInitialPolicies: [MeshRetry]\n", 201)
	e.expect("GET", "/meshes/some/meshretries/mesh-retry-all-some", "", 404)
	e.expect("GET", "/meshes/some/meshcircuitbreakers/mesh-circuit-breaker-all-some", "", 200)
	// The signing key is created either way.
	e.expect("GET", "/meshes/bare/secrets/dataplane-token-signing-key-bare-1", "", 200)
}

const timeout = `type: MeshTimeout
name: %s
mesh: default
labels:
  team: %s
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: Mesh
    default:
      idleTimeout: 20s
`

func TestPolicyCRUDAndLists(t *testing.T) {
	e := newEnv(t)
	for i, team := range []string{"a", "b", "a", "c", "a"} {
		e.expect("PUT", fmt.Sprintf("/meshes/default/meshtimeouts/tm%d", i), fmt.Sprintf(timeout, fmt.Sprintf("tm%d", i), team), 201)
	}
	got := e.expect("GET", "/meshes/default/meshtimeouts/tm1", "", 200)
	labels := got["labels"].(map[string]any)
	if labels["team"] != "b" || labels["kuma.io/mesh"] != "default" || labels["kuma.io/origin"] != "zone" {
		t.Fatalf("labels: %v", labels)
	}
	spec := got["spec"].(map[string]any)
	if spec["to"].([]any)[0].(map[string]any)["default"].(map[string]any)["idleTimeout"] != "20s" {
		t.Fatalf("spec did not round-trip: %v", spec)
	}

	page := e.expect("GET", "/meshes/default/meshtimeouts?name=tm&size=2", "", 200)
	if page["total"].(float64) != 5 || len(page["items"].([]any)) != 2 || page["next"] == nil {
		t.Fatalf("page 1: %v", page)
	}
	next := page["next"].(string)
	if !strings.Contains(next, "offset=2") || !strings.Contains(next, "size=2") {
		t.Fatalf("next = %s", next)
	}
	last := e.expect("GET", "/meshes/default/meshtimeouts?name=tm&size=2&offset=4", "", 200)
	if len(last["items"].([]any)) != 1 || last["next"] != nil {
		t.Fatalf("last page: %v", last)
	}
	filtered := e.expect("GET", "/meshes/default/meshtimeouts?filter[labels.team]=a&name=tm", "", 200)
	if filtered["total"].(float64) != 3 {
		t.Fatalf("label filter: %v", filtered)
	}
	all := e.expect("GET", "/meshtimeouts?name=tm", "", 200)
	if all["total"].(float64) != 5 {
		t.Fatalf("list across meshes: %v", all)
	}
	e.expect("DELETE", "/meshes/default/meshtimeouts/tm0", "", 200)
	e.expect("GET", "/meshes/default/meshtimeouts/tm0", "", 404)
}

func TestBadRequestsStoreNothing(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"malformed yaml", "PUT", "/meshes/default/meshtimeouts/x", "type: [unclosed", 400, ""},
		{"not an object", "PUT", "/meshes/default/meshtimeouts/x", "- a\n- b\n", 400, ""},
		{"name disagrees", "PUT", "/meshes/default/meshtimeouts/x", strings.Replace(fmt.Sprintf(timeout, "y", "a"), "", "", 1), 400, "name"},
		{"mesh disagrees", "PUT", "/meshes/default/meshtimeouts/x", strings.Replace(fmt.Sprintf(timeout, "x", "a"), "mesh: default", "mesh: other", 1), 400, "mesh"},
		{"type disagrees", "PUT", "/meshes/default/meshretries/x", fmt.Sprintf(timeout, "x", "a"), 400, "type"},
		{"missing mesh", "PUT", "/meshes/nope/meshtimeouts/x", strings.Replace(fmt.Sprintf(timeout, "x", "a"), "mesh: default", "mesh: nope", 1), 400, "mesh"},
		{"bad name", "PUT", "/meshes/default/meshtimeouts/Bad_Name", strings.Replace(fmt.Sprintf(timeout, "x", "a"), "name: x", "name: Bad_Name", 1), 400, "name"},
		{"bad label", "PUT", "/meshes/default/meshtimeouts/x", strings.Replace(fmt.Sprintf(timeout, "x", "a"), "team: a", "'bad key!': a", 1), 400, `labels["bad key!"]`},
		{"unknown top-level field", "PUT", "/meshes/default/meshtimeouts/x", fmt.Sprintf(timeout, "x", "a") + "extra: 1\n", 400, "extra"},
		{"unknown kind", "PUT", "/meshes/default/widgets/x", "type: Widget\nname: x\n", 404, ""},
		{"unsupported kind", "PUT", "/meshes/default/meshservices/x", "type: MeshService\nname: x\n", 400, ""},
		{"global kind under a mesh", "PUT", "/meshes/default/zones/x", "type: Zone\nname: x\n", 400, ""},
		{"mesh kind at the top", "PUT", "/meshtimeouts/x", fmt.Sprintf(timeout, "x", "a"), 400, ""},
		{"mesh field on a global kind", "PUT", "/zones/z", "type: Zone\nname: z\nmesh: default\n", 400, "mesh"},
		{"spec of wrong type", "PUT", "/meshes/default/meshtimeouts/x", "type: MeshTimeout\nname: x\nmesh: default\nspec: 3\n", 400, "spec"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := e.expect(tc.method, tc.path, tc.body, tc.status)
			if out["type"] != "/std-errors" || out["status"].(float64) != float64(tc.status) || out["title"] == "" {
				t.Fatalf("not a std-errors body: %v", out)
			}
			if tc.field != "" {
				fields := invalidFields(out)
				found := false
				for _, f := range fields {
					found = found || f == tc.field
				}
				if !found {
					t.Fatalf("invalid_parameters %v do not name %q: %v", fields, tc.field, out)
				}
			}
		})
	}
	for _, p := range []string{"/meshes/default/meshtimeouts/x", "/meshes/default/meshtimeouts/y", "/meshes/nope", "/zones/z"} {
		e.expect("GET", p, "", 404)
	}
}

func TestBodyOverOneMiBIsRefused(t *testing.T) {
	e := newEnv(t)
	big := fmt.Sprintf(timeout, "big", "a") + "# " + strings.Repeat("x", apiserver.MaxBodyBytes) + "\n"
	e.expect("PUT", "/meshes/default/meshtimeouts/big", big, http.StatusRequestEntityTooLarge)
	e.expect("GET", "/meshes/default/meshtimeouts/big", "", 404)
}

func TestQueryParameterErrors(t *testing.T) {
	e := newEnv(t)
	out := e.expect("GET", "/meshes?size=0", "", 400)
	if f := invalidFields(out); len(f) != 1 || f[0] != "size" {
		t.Fatalf("fields %v", f)
	}
	e.expect("GET", "/meshes?offset=-1", "", 400)
	e.expect("GET", "/widgets", "", 404)
}
