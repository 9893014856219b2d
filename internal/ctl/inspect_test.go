package ctl_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/trellis-mesh/trellis/internal/apiclient"
	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/apiserver/inspect"
	"github.com/trellis-mesh/trellis/internal/ctl"
	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/meshdefaults"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store/memory"
)

const inspectFixtures = `type: Mesh
name: other
---
type: Dataplane
mesh: default
name: web-1
networking:
  address: 10.0.0.1
  inbound:
    - port: 8080
      tags:
        kuma.io/service: web
---
type: Dataplane
mesh: default
name: web-2
networking:
  address: 10.0.0.2
  inbound:
    - port: 8080
      tags:
        kuma.io/service: web
---
type: Dataplane
mesh: default
name: api-1
networking:
  address: 10.0.0.3
  inbound:
    - port: 8080
      tags:
        kuma.io/service: api
---
type: Dataplane
mesh: default
name: gw-1
networking:
  address: 10.0.0.9
  gateway:
    type: BUILTIN
    tags:
      kuma.io/service: edge
---
type: Dataplane
mesh: other
name: db-1
networking:
  address: 10.1.0.1
  inbound:
    - port: 5432
      tags:
        kuma.io/service: db
`

// newInspectHarness runs trellisctl against an API with the inspect
// endpoints, where web-1 is connected, web-2 disconnected, api-1 NACKing,
// gw-1 never connected, and other/db-1 connected.
func newInspectHarness(t *testing.T, config inspect.ConfigFunc) *harness {
	t.Helper()
	st := memory.New()
	mgr := manager.New(st, kinds.Registry())
	if err := meshdefaults.EnsureDefaultMesh(context.Background(), mgr); err != nil {
		t.Fatal(err)
	}
	api := apiserver.New(mgr, apiserver.Info{Version: "9.9.9-test"}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ih, err := inspect.New(mgr, st, config)
	if err != nil {
		t.Fatal(err)
	}
	ih.Register(api)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	home := t.TempDir()
	h := &harness{
		t: t, url: srv.URL, api: apiclient.New(srv.URL, nil), home: home,
		env: map[string]string{ctl.EnvAPIURL: srv.URL, ctl.EnvConfig: filepath.Join(home, "trellisctl.yaml")},
	}
	h.mustRun(inspectFixtures, "apply", "-f", "-")

	now := time.Now()
	connected, updated, gone := now.Add(-5*time.Hour), now.Add(-10*time.Minute), now.Add(-3*time.Minute)
	write := func(mesh, name string, sub insights.Subscription) {
		err := insights.Update(context.Background(), st, mesh, name, func(in *insights.DataplaneInsight) { in.Add(sub) })
		if err != nil {
			t.Fatal(err)
		}
	}
	write("default", "web-1", insights.Subscription{ID: "a", ControlPlaneInstanceID: "cp-a", ConnectTime: connected,
		Status: insights.Status{LastUpdateTime: updated, LastACKedVersion: "v7"}})
	write("default", "web-2", insights.Subscription{ID: "b", ControlPlaneInstanceID: "cp-b", ConnectTime: connected, DisconnectTime: &gone,
		Status: insights.Status{LastUpdateTime: updated, LastACKedVersion: "v6"}})
	write("default", "api-1", insights.Subscription{ID: "c", ControlPlaneInstanceID: "cp-a", ConnectTime: connected,
		Status: insights.Status{LastUpdateTime: updated, LastACKedVersion: "v5", LastNACK: &insights.NACK{
			Version: "v7", Error: "Error adding/updating listener(s) inbound:10.0.0.3:8080: malformed\nfilter chain", Time: updated}}})
	write("other", "db-1", insights.Subscription{ID: "d", ControlPlaneInstanceID: "cp-b", ConnectTime: connected,
		Status: insights.Status{LastUpdateTime: updated, LastACKedVersion: "v1"}})
	return h
}

// rows splits a table into its header and rows of whitespace-separated cells.
func rows(out string) map[string][]string {
	m := map[string][]string{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		cells := strings.Split(line, "   ")
		var clean []string
		for _, c := range cells {
			if c = strings.TrimSpace(c); c != "" {
				clean = append(clean, c)
			}
		}
		if len(clean) < 2 {
			continue // the blank line and hint under a partial page
		}
		key := "header"
		if i > 0 {
			key = clean[1]
		}
		m[key] = clean
	}
	return m
}

func TestInspectDataplanesTable(t *testing.T) {
	h := newInspectHarness(t, nil)
	r := h.mustRun("", "inspect", "dataplanes")
	got := rows(r.stdout)
	want := map[string][]string{
		"header": {"MESH", "NAME", "STATUS", "LAST CONNECTED", "LAST UPDATED", "CP INSTANCE", "ACKED VERSION", "NACK", "SERVICES"},
		"web-1":  {"default", "web-1", "Online", "5h ago", "10m ago", "cp-a", "v7", "-", "web"},
		"web-2":  {"default", "web-2", "Offline", "5h ago", "10m ago", "cp-b", "v6", "-", "web"},
		"api-1":  {"default", "api-1", "Online", "5h ago", "10m ago", "cp-a", "v5", "Error adding/updating listener(s) inbou…", "api"},
		"gw-1":   {"default", "gw-1", "Offline", "never", "-", "-", "-", "-", "edge"},
	}
	if len(got) != len(want) {
		t.Errorf("table has %d lines, want %d:\n%s", len(got), len(want), r.stdout)
	}
	for k, w := range want {
		if strings.Join(got[k], "|") != strings.Join(w, "|") {
			t.Errorf("row %s:\n got %q\nwant %q\n%s", k, got[k], w, r.stdout)
		}
	}
	if !strings.HasPrefix(r.stdout, "MESH ") {
		t.Errorf("table should start with the header:\n%s", r.stdout)
	}

	r = h.mustRun("", "inspect", "dataplanes", "-A")
	wantContains(t, "inspect -A", r.stdout, "other ", "db-1", "gw-1")

	r = h.mustRun("", "inspect", "dataplanes", "-m", "other")
	if got := rows(r.stdout); len(got) != 2 || got["db-1"] == nil {
		t.Errorf("-m other:\n%s", r.stdout)
	}

	r = h.mustRun("", "inspect", "dataplanes", "--tag", "kuma.io/service=web")
	if got := rows(r.stdout); len(got) != 3 || got["web-1"] == nil || got["web-2"] == nil {
		t.Errorf("--tag:\n%s", r.stdout)
	}
	r = h.mustRun("", "inspect", "dataplanes", "--gateway")
	if got := rows(r.stdout); len(got) != 2 || got["gw-1"] == nil {
		t.Errorf("--gateway:\n%s", r.stdout)
	}

	r = h.mustRun("", "inspect", "dataplanes", "--size", "2")
	if got := rows(r.stdout); len(got) != 3 || got["api-1"] == nil || got["gw-1"] == nil {
		t.Errorf("--size 2:\n%s", r.stdout)
	}
	wantContains(t, "--size 2", r.stdout, "--offset=2")
}

func TestInspectDataplanesStructured(t *testing.T) {
	h := newInspectHarness(t, nil)
	r := h.mustRun("", "inspect", "dataplanes", "-o", "json")
	var list struct {
		Total int `json:"total"`
		Items []struct {
			Type             string         `json:"type"`
			Name             string         `json:"name"`
			Dataplane        map[string]any `json:"dataplane"`
			DataplaneInsight map[string]any `json:"dataplaneInsight"`
		} `json:"items"`
		Next *string `json:"next"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("-o json: %v\n%s", err, r.stdout)
	}
	if list.Total != 4 || len(list.Items) != 4 || list.Items[0].Type != "DataplaneOverview" || list.Items[0].Name != "api-1" || list.Items[0].Dataplane["networking"] == nil {
		t.Errorf("-o json: %+v", list)
	}
	r = h.mustRun("", "inspect", "dataplanes", "-A", "-o", "yaml")
	if err := yaml.Unmarshal([]byte(r.stdout), &list); err != nil || list.Total != 5 {
		t.Errorf("-o yaml: %v %+v\n%s", err, list, r.stdout)
	}
	wantContains(t, "-o yaml", r.stdout, "total: 5", "type: DataplaneOverview", "dataplaneInsight:", "lastAckedVersion: v7")
	h.mustFail("", "inspect", "dataplanes", "-o", "xml")
}

func TestInspectDataplane(t *testing.T) {
	config := `{"xds":{"clusters":[{"name":"web"}]}}`
	h := newInspectHarness(t, func(_ context.Context, mesh, name string) ([]byte, error) {
		if mesh != "default" || name != "web-1" {
			return []byte(`{"xds":{}}`), nil
		}
		return []byte(config), nil
	})

	r := h.mustRun("", "inspect", "dataplane", "web-1")
	if !strings.HasPrefix(r.stdout, "type: DataplaneOverview\nmesh: default\nname: web-1\n") {
		t.Errorf("overview YAML should keep the API's order:\n%s", r.stdout)
	}
	var ov map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &ov); err != nil {
		t.Fatal(err)
	}
	subs := ov["dataplaneInsight"].(map[string]any)["subscriptions"].([]any)
	if len(subs) != 1 || subs[0].(map[string]any)["controlPlaneInstanceId"] != "cp-a" {
		t.Errorf("overview: %v", ov)
	}
	r = h.mustRun("", "inspect", "dataplane", "db-1", "-m", "other", "--type", "overview", "-o", "json")
	wantContains(t, "overview -o json", r.stdout, "{\n  \"type\": \"DataplaneOverview\",", `"name": "db-1"`)

	r = h.mustRun("", "inspect", "dataplane", "web-1", "--type", "config")
	if r.stdout != "{\n  \"xds\": {\n    \"clusters\": [\n      {\n        \"name\": \"web\"\n      }\n    ]\n  }\n}\n" {
		t.Errorf("config is not pretty JSON:\n%s", r.stdout)
	}
	r = h.mustRun("", "inspect", "dataplane", "web-1", "--type", "config", "-o", "yaml")
	wantContains(t, "config -o yaml", r.stdout, "xds:\n  clusters:\n  - name: web\n")

	r = h.mustFail("", "inspect", "dataplane", "nope")
	wantContains(t, "missing dataplane", r.stderr, `there is no Dataplane "nope" in mesh "default"`)
	r = h.mustFail("", "inspect", "dataplane", "nope", "--type", "config")
	wantContains(t, "missing dataplane config", r.stderr, `there is no Dataplane "nope" in mesh "default"`)
	r = h.mustFail("", "inspect", "dataplane", "web-1", "--type", "stats")
	wantContains(t, "bad type", r.stderr, "overview, config, policies or rules")
	r = h.mustFail("", "inspect", "dataplane", "web-1", "-o", "table")
	wantContains(t, "bad output", r.stderr, "yaml or json")
}

func TestInspectConfigNotImplemented(t *testing.T) {
	h := newInspectHarness(t, nil)
	r := h.mustFail("", "inspect", "dataplane", "web-1", "--type", "config")
	wantContains(t, "501", r.stderr, "Not implemented", "does not generate dataplane configuration yet")
}

func TestInspectCompletion(t *testing.T) {
	h := newInspectHarness(t, nil)
	r := h.mustRun("", "__complete", "inspect", "")
	wantContains(t, "inspect subcommands", r.stdout, "dataplane\t", "dataplanes\t")
	r = h.mustRun("", "__complete", "inspect", "dataplane", "")
	wantContains(t, "dataplane names", r.stdout, "web-1\n", "gw-1\n")
	r = h.mustRun("", "__complete", "inspect", "dataplane", "-m", "other", "")
	wantContains(t, "names in -m other", r.stdout, "db-1\n")
	r = h.mustRun("", "__complete", "inspect", "dataplane", "web-1", "--type", "")
	wantContains(t, "--type values", r.stdout, "overview\n", "config\n")
}
