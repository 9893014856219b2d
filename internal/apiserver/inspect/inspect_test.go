package inspect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/apiserver/inspect"
	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/meshdefaults"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/memory"
)

type env struct {
	t   *testing.T
	url string
	st  store.Store
}

// newEnv runs the API with the inspect endpoints mounted, over a memory
// store holding the fixtures below.
func newEnv(t *testing.T, config inspect.ConfigFunc) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := memory.New()
	mgr := manager.New(st, kinds.Registry())
	if err := meshdefaults.EnsureDefaultMesh(context.Background(), mgr); err != nil {
		t.Fatal(err)
	}
	api := apiserver.New(mgr, apiserver.Info{Version: "test"}, nil, log)
	h, err := inspect.New(mgr, st, config)
	if err != nil {
		t.Fatal(err)
	}
	h.Register(api)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	e := &env{t: t, url: srv.URL, st: st}
	e.fixtures()
	return e
}

const dataplane = `type: Dataplane
mesh: %s
name: %s
networking:
  address: %s
  inbound:
  - port: 8080
    tags:
      kuma.io/service: %s
      version: v1
`

const gateway = `type: Dataplane
mesh: default
name: gw-1
networking:
  address: 10.0.0.9
  gateway:
    type: BUILTIN
    tags:
      kuma.io/service: edge
`

var (
	t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
	t2 = t0.Add(2 * time.Minute)
)

// fixtures: in mesh default, web-1 is connected, web-2 disconnected, web-3
// connected but NACKing, gw-1 never connected; in mesh other, db-1 is
// connected.
func (e *env) fixtures() {
	e.expect("PUT", "/meshes/other", "type: Mesh\nname: other\n", 201)
	e.expect("PUT", "/meshes/default/dataplanes/web-1", fmt.Sprintf(dataplane, "default", "web-1", "10.0.0.1", "web"), 201)
	e.expect("PUT", "/meshes/default/dataplanes/web-2", fmt.Sprintf(dataplane, "default", "web-2", "10.0.0.2", "web"), 201)
	e.expect("PUT", "/meshes/default/dataplanes/web-3", fmt.Sprintf(dataplane, "default", "web-3", "10.0.0.3", "web-admin"), 201)
	e.expect("PUT", "/meshes/default/dataplanes/gw-1", gateway, 201)
	e.expect("PUT", "/meshes/other/dataplanes/db-1", fmt.Sprintf(dataplane, "other", "db-1", "10.1.0.1", "db"), 201)

	e.insight("default", "web-1", func(in *insights.DataplaneInsight) {
		in.Add(insights.Subscription{ID: "s1", ControlPlaneInstanceID: "cp-a", ConnectTime: t0,
			Status: insights.Status{LastUpdateTime: t1, LastACKedVersion: "v3", Total: insights.Totals{ResponsesSent: 3, ResponsesAcknowledged: 3}}})
	})
	e.insight("default", "web-2", func(in *insights.DataplaneInsight) {
		in.Add(insights.Subscription{ID: "s2", ControlPlaneInstanceID: "cp-b", ConnectTime: t0, DisconnectTime: &t2,
			Status: insights.Status{LastUpdateTime: t1, LastACKedVersion: "v2"}})
	})
	e.insight("default", "web-3", func(in *insights.DataplaneInsight) {
		in.Add(insights.Subscription{ID: "s3", ControlPlaneInstanceID: "cp-a", ConnectTime: t1,
			Status: insights.Status{LastUpdateTime: t2, LastACKedVersion: "v1",
				LastNACK: &insights.NACK{TypeURL: "type.googleapis.com/envoy.config.listener.v3.Listener", Version: "v2", Error: "invalid listener", Time: t2}}})
	})
	e.insight("other", "db-1", func(in *insights.DataplaneInsight) {
		in.Add(insights.Subscription{ID: "s4", ControlPlaneInstanceID: "cp-a", ConnectTime: t0})
	})
	// An insight whose Dataplane is gone shows nowhere.
	e.insight("default", "ghost", func(in *insights.DataplaneInsight) {
		in.Add(insights.Subscription{ID: "s5", ConnectTime: t0})
	})
}

func (e *env) insight(mesh, name string, fn func(*insights.DataplaneInsight)) {
	e.t.Helper()
	if err := insights.Update(context.Background(), e.st, mesh, name, fn); err != nil {
		e.t.Fatal(err)
	}
}

// raw sends a request and returns the status, content type and body.
func (e *env) raw(method, path, body string) (int, string, []byte) {
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
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), data
}

// expect sends a request, checks the status and decodes a JSON object.
func (e *env) expect(method, path, body string, status int) map[string]any {
	e.t.Helper()
	got, _, data := e.raw(method, path, body)
	if got != status {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, status, data)
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		e.t.Fatalf("%s %s: not a JSON object: %s", method, path, data)
	}
	return out
}

func names(list map[string]any) []string {
	var out []string
	for _, it := range list["items"].([]any) {
		o := it.(map[string]any)
		out = append(out, o["mesh"].(string)+"/"+o["name"].(string))
	}
	return out
}

func wantNames(t *testing.T, what string, list map[string]any, want ...string) {
	t.Helper()
	if got := names(list); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s: items %v, want %v", what, got, want)
	}
}

func TestRoutesReachTheOverviews(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/meshes/default/dataplanes+insights", "/meshes/default/dataplanes/_overview"} {
		list := e.expect("GET", path, "", 200)
		wantNames(t, path, list, "default/gw-1", "default/web-1", "default/web-2", "default/web-3")
		if list["total"].(float64) != 4 || list["next"] != nil {
			t.Errorf("%s: total %v next %v", path, list["total"], list["next"])
		}
		for _, it := range list["items"].([]any) {
			if it.(map[string]any)["type"] != "DataplaneOverview" {
				t.Errorf("%s: item %v", path, it)
			}
		}
	}
	for _, path := range []string{"/dataplanes+insights", "/dataplanes/_overview"} {
		wantNames(t, path, e.expect("GET", path, "", 200), "other/db-1", "default/gw-1", "default/web-1", "default/web-2", "default/web-3")
	}
	for _, path := range []string{"/meshes/default/dataplanes/web-1/_overview", "/meshes/default/dataplanes+insights/web-1"} {
		ov := e.expect("GET", path, "", 200)
		if ov["type"] != "DataplaneOverview" || ov["name"] != "web-1" || ov["mesh"] != "default" {
			t.Errorf("%s: %v", path, ov)
		}
	}
	// The resource API is untouched.
	list := e.expect("GET", "/meshes/default/dataplanes", "", 200)
	if it := list["items"].([]any)[0].(map[string]any); it["type"] != "Dataplane" {
		t.Errorf("GET dataplanes now lists %v", it["type"])
	}
	if dp := e.expect("GET", "/meshes/default/dataplanes/web-1", "", 200); dp["type"] != "Dataplane" {
		t.Errorf("GET dataplane: %v", dp)
	}
	if dp := e.expect("GET", "/dataplanes", "", 200); dp["total"].(float64) != 5 {
		t.Errorf("GET /dataplanes: %v", dp)
	}
}

func TestOverviewShape(t *testing.T) {
	e := newEnv(t, nil)
	_, ctype, data := e.raw("GET", "/meshes/default/dataplanes/web-3/_overview", "")
	if ctype != "application/json" {
		t.Errorf("content type %q", ctype)
	}
	if !bytes.HasPrefix(data, []byte(`{"type":"DataplaneOverview","mesh":"default","name":"web-3","creationTime":"`)) {
		t.Errorf("overview should start with type, mesh, name, creationTime:\n%s", data)
	}
	var ov struct {
		CreationTime     time.Time      `json:"creationTime"`
		ModificationTime time.Time      `json:"modificationTime"`
		Dataplane        map[string]any `json:"dataplane"`
		DataplaneInsight struct {
			Subscriptions []insights.Subscription `json:"subscriptions"`
		} `json:"dataplaneInsight"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ov); err == nil {
		t.Fatalf("the overview should carry type/mesh/name too: %s", data)
	}
	if err := json.Unmarshal(data, &ov); err != nil {
		t.Fatal(err)
	}
	if ov.CreationTime.IsZero() || ov.ModificationTime.IsZero() {
		t.Errorf("times: %s", data)
	}
	if addr := ov.Dataplane["networking"].(map[string]any)["address"]; addr != "10.0.0.3" {
		t.Errorf("dataplane.networking.address = %v", addr)
	}
	for _, k := range []string{"type", "mesh", "name"} {
		if _, has := ov.Dataplane[k]; has {
			t.Errorf("dataplane holds only the spec, has %q", k)
		}
	}
	subs := ov.DataplaneInsight.Subscriptions
	if len(subs) != 1 || subs[0].ID != "s3" || subs[0].DisconnectTime != nil || subs[0].Status.LastNACK == nil ||
		subs[0].Status.LastNACK.Error != "invalid listener" || subs[0].Status.LastACKedVersion != "v1" {
		t.Errorf("dataplaneInsight: %+v", subs)
	}

	// Disconnected: the subscription has a disconnectTime.
	ov2 := e.expect("GET", "/meshes/default/dataplanes/web-2/_overview", "", 200)
	sub := ov2["dataplaneInsight"].(map[string]any)["subscriptions"].([]any)[0].(map[string]any)
	if sub["disconnectTime"] != t2.Format(time.RFC3339) {
		t.Errorf("disconnected subscription: %v", sub)
	}

	// Never connected: an empty insight, as Kuma sends it.
	_, _, data = e.raw("GET", "/meshes/default/dataplanes/gw-1/_overview", "")
	if !bytes.Contains(data, []byte(`"dataplaneInsight":{}`)) {
		t.Errorf("a proxy that never connected should have an empty insight:\n%s", data)
	}
	if bytes.Contains(data, []byte(`"labels"`)) {
		t.Errorf("no labels, no labels field:\n%s", data)
	}
}

func TestOverviewListPaging(t *testing.T) {
	e := newEnv(t, nil)
	page := e.expect("GET", "/meshes/default/dataplanes+insights?size=3", "", 200)
	wantNames(t, "page 1", page, "default/gw-1", "default/web-1", "default/web-2")
	if page["total"].(float64) != 4 {
		t.Errorf("total %v", page["total"])
	}
	next, _ := page["next"].(string)
	u, err := url.Parse(next)
	if err != nil || u.Path != "/meshes/default/dataplanes+insights" || u.Query().Get("offset") != "3" || u.Query().Get("size") != "3" {
		t.Fatalf("next = %q", next)
	}
	page = e.expect("GET", u.RequestURI(), "", 200)
	wantNames(t, "page 2", page, "default/web-3")
	if page["next"] != nil {
		t.Errorf("last page has next %v", page["next"])
	}

	wantNames(t, "name=web", e.expect("GET", "/dataplanes+insights?name=web&offset=1", "", 200), "default/web-2", "default/web-3")

	bad := e.expect("GET", "/meshes/default/dataplanes+insights?size=0&offset=x&gateway=maybe&tag=nocolon", "", 400)
	var fields []string
	for _, p := range bad["invalid_parameters"].([]any) {
		fields = append(fields, p.(map[string]any)["field"].(string))
	}
	if strings.Join(fields, ",") != "size,offset,tag,gateway" {
		t.Errorf("invalid parameters %v", fields)
	}
}

func TestOverviewListFilters(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		query string
		want  []string
	}{
		{"tag=kuma.io/service:web", []string{"default/web-1", "default/web-2"}},
		{"tag=kuma.io/service:web&tag=version:v1", []string{"default/web-1", "default/web-2"}},
		{"tag=kuma.io/service:web&tag=version:v2", nil},
		{"tag=version:*", []string{"default/web-1", "default/web-2", "default/web-3"}},
		{"tag=kuma.io/service:edge", []string{"default/gw-1"}},
		{"gateway=true", []string{"default/gw-1"}},
		{"gateway=builtin", []string{"default/gw-1"}},
		{"gateway=delegated", nil},
		{"gateway=false", []string{"default/web-1", "default/web-2", "default/web-3"}},
		{"gateway=false&size=1&offset=1", []string{"default/web-2"}},
	}
	for _, c := range cases {
		list := e.expect("GET", "/meshes/default/dataplanes+insights?"+c.query, "", 200)
		wantNames(t, c.query, list, c.want...)
	}
	list := e.expect("GET", "/meshes/default/dataplanes+insights?gateway=false&size=1&offset=1", "", 200)
	if list["total"].(float64) != 3 || list["next"] == nil {
		t.Errorf("filtered page: total %v next %v", list["total"], list["next"])
	}
}

func TestNotFound(t *testing.T) {
	e := newEnv(t, func(context.Context, string, string) ([]byte, error) { return []byte(`{}`), nil })
	for _, path := range []string{
		"/meshes/default/dataplanes/nope/_overview",
		"/meshes/default/dataplanes+insights/nope",
		"/meshes/default/dataplanes/nope/_config",
		"/meshes/nomesh/dataplanes/web-1/_config",
		"/meshes/default/dataplanes/ghost/_overview",
	} {
		out := e.expect("GET", path, "", 404)
		if out["type"] != "/std-errors" || out["status"].(float64) != 404 {
			t.Errorf("%s: %v", path, out)
		}
	}
	// An unknown mesh has no overviews, as it has no dataplanes.
	if list := e.expect("GET", "/meshes/nomesh/dataplanes+insights", "", 200); list["total"].(float64) != 0 || list["items"] == nil {
		t.Errorf("unknown mesh: %v", list)
	}
}

func TestConfig(t *testing.T) {
	t.Run("not wired", func(t *testing.T) {
		e := newEnv(t, nil)
		out := e.expect("GET", "/meshes/default/dataplanes/web-1/_config", "", 501)
		if out["type"] != "/std-errors" {
			t.Errorf("501: %v", out)
		}
	})
	t.Run("passthrough", func(t *testing.T) {
		var gotMesh, gotName string
		body := `{"xds":{"clusters":[{"name":"web"}]}}`
		e := newEnv(t, func(_ context.Context, mesh, name string) ([]byte, error) {
			gotMesh, gotName = mesh, name
			return []byte(body), nil
		})
		status, ctype, data := e.raw("GET", "/meshes/default/dataplanes/web-1/_config", "")
		if status != 200 || ctype != "application/json" || strings.TrimSpace(string(data)) != body {
			t.Errorf("got %d %q %s", status, ctype, data)
		}
		if gotMesh != "default" || gotName != "web-1" {
			t.Errorf("ConfigFunc got %s/%s", gotMesh, gotName)
		}
	})
	t.Run("errors", func(t *testing.T) {
		var fail error
		e := newEnv(t, func(context.Context, string, string) ([]byte, error) { return nil, fail })
		fail = fmt.Errorf("proxy vanished: %w", store.ErrNotFound)
		e.expect("GET", "/meshes/default/dataplanes/web-1/_config", "", 404)
		fail = fmt.Errorf("no listener for inbound 8080")
		out := e.expect("GET", "/meshes/default/dataplanes/web-1/_config", "", 500)
		if !strings.Contains(out["detail"].(string), "no listener for inbound 8080") {
			t.Errorf("500 detail: %v", out)
		}
	})
	t.Run("not JSON", func(t *testing.T) {
		e := newEnv(t, func(context.Context, string, string) ([]byte, error) { return []byte("clusters: []"), nil })
		e.expect("GET", "/meshes/default/dataplanes/web-1/_config", "", 500)
	})
}
