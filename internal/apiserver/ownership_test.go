package apiserver_test

import (
	"context"
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

func newModeEnv(t *testing.T, mode string) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mgr := manager.New(memory.New(), kinds.Registry())
	mgr.OnCreate(meshdefaults.Hook(mgr, log))
	if err := meshdefaults.EnsureDefaultMesh(context.Background(), mgr); err != nil {
		t.Fatal(err)
	}
	api := apiserver.New(mgr, apiserver.Info{Version: "test"}, nil, log)
	api.UseMode(mode)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, url: srv.URL, mgr: mgr}
}

const (
	ownTimeout = `{"type":"MeshTimeout","mesh":"default","name":"t","spec":{"targetRef":{"kind":"Mesh"},"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"1s"}}]}}`
	ownDP      = `{"type":"Dataplane","mesh":"default","name":"dp","networking":{"address":"10.0.0.1","inbound":[{"port":1,"servicePort":2,"tags":{"kuma.io/service":"s"}}]}}`
)

func TestZoneRefusesWritesToGlobalKinds(t *testing.T) {
	e := newModeEnv(t, "zone")
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPut, "/meshes/default/meshtimeouts/t", ownTimeout},
		{http.MethodDelete, "/meshes/default/meshtimeouts/t", ""},
		{http.MethodPut, "/meshes/m2", `{"type":"Mesh","name":"m2"}`},
		{http.MethodDelete, "/meshes/default", ""},
		{http.MethodPut, "/meshes/default/secrets/s", `{"type":"Secret","mesh":"default","name":"s","data":"eA=="}`},
		{http.MethodPut, "/zones/z", `{"type":"Zone","name":"z"}`},
	} {
		out := e.expect(c.method, c.path, c.body, http.StatusMethodNotAllowed)
		if d, _ := out["detail"].(string); !strings.Contains(d, "on Zone CP") || !strings.Contains(d, "only applied on Global CP") {
			t.Errorf("%s %s: detail %q", c.method, c.path, d)
		}
	}
	// Reads still work; the zone's own kinds are writable.
	e.expect(http.MethodGet, "/meshes/default/meshtimeouts", "", http.StatusOK)
	e.expect(http.MethodPut, "/meshes/default/dataplanes/dp", ownDP, http.StatusCreated)
	e.expect(http.MethodDelete, "/meshes/default/dataplanes/dp", "", http.StatusOK)
}

func TestGlobalRefusesWritesToZoneKinds(t *testing.T) {
	e := newModeEnv(t, "global")
	out := e.expect(http.MethodPut, "/meshes/default/dataplanes/dp", ownDP, http.StatusMethodNotAllowed)
	if d, _ := out["detail"].(string); !strings.Contains(d, "a Dataplane on Global CP") {
		t.Errorf("detail %q", d)
	}
	e.expect(http.MethodDelete, "/meshes/default/dataplanes/dp", "", http.StatusMethodNotAllowed)
	e.expect(http.MethodPut, "/zoneingresses/i", `{"type":"ZoneIngress","name":"i","networking":{"address":"10.0.0.1","port":10001}}`, http.StatusMethodNotAllowed)
	// Policies are the global's, and carry kuma.io/origin: global.
	e.expect(http.MethodPut, "/meshes/default/meshtimeouts/t", ownTimeout, http.StatusCreated)
	got := e.expect(http.MethodGet, "/meshes/default/meshtimeouts/t", "", http.StatusOK)
	if l, _ := got["labels"].(map[string]any); l["kuma.io/origin"] != "global" {
		t.Errorf("a policy created on the global: labels %v", got["labels"])
	}
}

func TestStandaloneWritesEverything(t *testing.T) {
	e := newModeEnv(t, "standalone")
	e.expect(http.MethodPut, "/meshes/default/meshtimeouts/t", ownTimeout, http.StatusCreated)
	e.expect(http.MethodPut, "/meshes/default/dataplanes/dp", ownDP, http.StatusCreated)
	got := e.expect(http.MethodGet, "/meshes/default/meshtimeouts/t", "", http.StatusOK)
	if l, _ := got["labels"].(map[string]any); l["kuma.io/origin"] != "zone" {
		t.Errorf("standalone policy labels %v", got["labels"])
	}
}
