package apiserver_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/cpmetrics"
	"github.com/trellis-mesh/trellis/internal/cpmetrics/proxystats"
	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/meshdefaults"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store/memory"
)

// serveInsights runs the API with the insight endpoints, /metrics and
// request metrics on a real socket, and returns its base URL.
func serveInsights(t *testing.T) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mgr := manager.New(memory.New(), kinds.Registry())
	mgr.OnCreate(meshdefaults.Hook(mgr, log))
	ctx, cancel := context.WithCancel(context.Background())
	if err := meshdefaults.EnsureDefaultMesh(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{
		"type: Mesh\nname: other\nskipCreatingInitialPolicies: ['*']\n",
		"type: Dataplane\nmesh: default\nname: web-1\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - port: 8001\n    tags:\n      kuma.io/service: web\n",
	} {
		res, err := mgr.Registry().Decode([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mgr.Apply(ctx, res); err != nil {
			t.Fatal(err)
		}
	}
	m := cpmetrics.New()
	api := apiserver.New(mgr, apiserver.Info{Version: "test"}, nil, log)
	api.UseMetrics(m)
	api.Handle("GET /metrics", m.Handler())
	apiserver.NewInsightHandlers(insights.NewReader(mgr), proxystats.New(0)).Register(api)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = api.Serve(ctx, ln, time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v
}

func TestInsightEndpoints(t *testing.T) {
	base := serveInsights(t)
	code, page := getJSON(t, base+"/mesh-insights?size=1")
	items, _ := page["items"].([]any)
	if code != 200 || page["total"] != 2.0 || len(items) != 1 || page["next"] == nil {
		t.Fatalf("/mesh-insights?size=1: %d %v", code, page)
	}
	if first, _ := items[0].(map[string]any); first["name"] != "default" || first["type"] != "MeshInsight" {
		t.Errorf("first mesh insight %v", first)
	}
	code, mi := getJSON(t, base+"/mesh-insights/other")
	if code != 200 || mi["name"] != "other" {
		t.Errorf("/mesh-insights/other: %d %v", code, mi)
	}
	for _, path := range []string{"/mesh-insights/nope", "/meshes/nope/service-insights", "/meshes/nope/_service-map", "/meshes/default/service-insights/nope"} {
		if code, body := getJSON(t, base+path); code != 404 || body["type"] != "/std-errors" || !strings.Contains(body["detail"].(string), `"nope"`) {
			t.Errorf("%s: %d %v", path, code, body)
		}
	}
	code, svc := getJSON(t, base+"/meshes/default/service-insights/web")
	if code != 200 || svc["status"] != "offline" || svc["type"] != "ServiceInsight" {
		t.Errorf("web: %d %v", code, svc)
	}
	code, g := getJSON(t, base+"/global-insight")
	if code != 200 || g["type"] != "GlobalInsight" {
		t.Errorf("/global-insight: %d %v", code, g)
	}
	code, sm := getJSON(t, base+"/meshes/default/_service-map")
	if code != 200 || sm["mesh"] != "default" || len(sm["services"].([]any)) != 1 || sm["edges"] == nil {
		t.Errorf("service map: %d %v", code, sm)
	}
	if code, _ := getJSON(t, base+"/mesh-insights?size=0"); code != 400 {
		t.Errorf("size=0: %d", code)
	}

	// Requests are counted by route pattern, never by raw path.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`trellis_cp_api_requests_total{code="200",handler="GET /mesh-insights/{mesh}",method="GET"} 1`,
		`trellis_cp_api_requests_total{code="404",handler="GET /meshes/{mesh}/service-insights/{name}",method="GET"} 1`,
		`trellis_cp_api_requests_total{code="400",handler="GET /mesh-insights",method="GET"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(text, `handler="/meshes/nope`) {
		t.Error("a raw path is a label")
	}
}
