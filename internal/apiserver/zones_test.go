package apiserver_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/meshdefaults"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/memory"
)

// serveZones runs the API of a global control plane with two zones, one of
// them connected, a zone ingress per zone and a dataplane per zone.
func serveZones(t *testing.T) (string, store.Store) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := memory.New()
	mgr := manager.New(st, kinds.Registry())
	mgr.OnCreate(meshdefaults.Hook(mgr, log))
	ctx, cancel := context.WithCancel(context.Background())
	if err := meshdefaults.EnsureDefaultMesh(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{
		"type: Zone\nname: zone-1\n",
		"type: Zone\nname: zone-2\nenabled: false\n",
		"type: ZoneIngress\nname: zone-1.ingress\nzone: zone-1\nnetworking:\n  address: 127.0.0.1\n  port: 10001\n",
		"type: Dataplane\nmesh: default\nname: web-1\nlabels:\n  kuma.io/zone: zone-1\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - port: 8001\n    tags:\n      kuma.io/service: web\n",
		"type: Dataplane\nmesh: default\nname: api-1\nlabels:\n  kuma.io/zone: zone-2\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - port: 8002\n    tags:\n      kuma.io/service: api\n",
	} {
		res, err := mgr.Registry().Decode([]byte(doc))
		if err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		if _, err := mgr.Apply(ctx, res); err != nil {
			t.Fatal(err)
		}
	}
	api := apiserver.New(mgr, apiserver.Info{Version: "test", Mode: "global"}, nil, log)
	apiserver.NewInsightHandlers(insights.NewReader(mgr), nil).Register(api)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = api.Serve(ctx, ln, time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String(), st
}

func zoneGetJSON(t *testing.T, url string, want int, into any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d: %s", url, resp.StatusCode, want, body)
	}
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, body)
		}
	}
}

func TestZoneOverviews(t *testing.T) {
	base, st := serveZones(t)
	ctx := context.Background()
	if err := insights.ZoneConnected(ctx, st, "zone-1", insights.ZoneConnection{
		SubscriptionID: "s1", GlobalInstanceID: "global-a", ZoneInstanceID: "zone-1-a",
		Version: insights.CPVersion{Version: "1.2.3", GitTag: "v1.2.3", KumaCpGlobalCompatible: true},
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []insights.ZoneSync{{Kind: "Dataplane", Sent: 2, Acknowledged: 2}, {Kind: "MeshTrafficPermission", Sent: 1, Rejected: 1}, {Kind: "Dataplane", Sent: 1}} {
		if err := insights.ZoneSynced(ctx, st, "zone-1", "s1", s); err != nil {
			t.Fatal(err)
		}
	}
	// zone-2 connected once and left.
	if err := insights.ZoneConnected(ctx, st, "zone-2", insights.ZoneConnection{SubscriptionID: "s2", GlobalInstanceID: "global-a"}); err != nil {
		t.Fatal(err)
	}
	if err := insights.ZoneDisconnected(ctx, st, "zone-2", "s2"); err != nil {
		t.Fatal(err)
	}

	var list struct {
		Total int                     `json:"total"`
		Items []insights.ZoneOverview `json:"items"`
	}
	zoneGetJSON(t, base+"/zones+insights", http.StatusOK, &list)
	if list.Total != 2 || len(list.Items) != 2 || list.Items[0].Name != "zone-1" || list.Items[1].Name != "zone-2" {
		t.Fatalf("zones+insights = %+v", list)
	}
	z1, z2 := list.Items[0], list.Items[1]
	if z1.Type != "ZoneOverview" || !z1.Zone.Enabled || z2.Zone.Enabled {
		t.Errorf("type/enabled: %+v %+v", z1, z2)
	}
	if !z1.ZoneInsight.Online() || z2.ZoneInsight.Online() {
		t.Errorf("zone-1 must be online and zone-2 offline: %+v %+v", z1.ZoneInsight, z2.ZoneInsight)
	}
	sub := z1.ZoneInsight.Last()
	if sub.GlobalInstanceID != "global-a" || sub.Version.KumaCp.Version != "1.2.3" ||
		sub.Status.Total != (insights.KDSStats{ResponsesSent: 4, ResponsesAcknowledged: 2, ResponsesRejected: 1}) ||
		*sub.Status.Stat["Dataplane"] != (insights.KDSStats{ResponsesSent: 3, ResponsesAcknowledged: 2}) {
		t.Errorf("zone-1 subscription = %+v", sub)
	}

	// Kuma's JSON names, read raw.
	var raw map[string]any
	zoneGetJSON(t, base+"/zones+insights/zone-1", http.StatusOK, &raw)
	subs := raw["zoneInsight"].(map[string]any)["subscriptions"].([]any)
	s0 := subs[0].(map[string]any)
	for _, k := range []string{"id", "globalInstanceId", "connectTime", "status", "version"} {
		if _, ok := s0[k]; !ok {
			t.Errorf("subscription has no %q: %v", k, s0)
		}
	}
	if v := s0["version"].(map[string]any)["kumaCp"].(map[string]any)["version"]; v != "1.2.3" {
		t.Errorf("version.kumaCp.version = %v", v)
	}
	if v := s0["status"].(map[string]any)["total"].(map[string]any)["responsesSent"]; v != 4.0 {
		t.Errorf("status.total.responsesSent = %v", v)
	}
	zoneGetJSON(t, base+"/zones+insights/nope", http.StatusNotFound, nil)
	zoneGetJSON(t, base+"/zones+insights?name=2", http.StatusOK, &list)
	if list.Total != 1 || list.Items[0].Name != "zone-2" {
		t.Errorf("name filter: %+v", list)
	}
	// The resource API serves the Zones themselves.
	zoneGetJSON(t, base+"/zones/zone-1", http.StatusOK, &raw)
	if raw["type"] != "Zone" {
		t.Errorf("GET /zones/zone-1 = %v", raw)
	}

	// A reconnect closes the old stream and opens a new one.
	if err := insights.ZoneConnected(ctx, st, "zone-2", insights.ZoneConnection{SubscriptionID: "s3"}); err != nil {
		t.Fatal(err)
	}
	zi, err := insights.GetZone(ctx, st, "zone-2")
	if err != nil || len(zi.Subscriptions) != 2 || !zi.Online() {
		t.Fatalf("zone-2 after reconnect: %+v %v", zi, err)
	}
	if err := insights.ZoneDisconnected(ctx, st, "zone-2", "s3"); err != nil {
		t.Fatal(err)
	}

	var ingresses struct {
		Total int              `json:"total"`
		Items []map[string]any `json:"items"`
	}
	zoneGetJSON(t, base+"/zoneingresses+insights", http.StatusOK, &ingresses)
	if ingresses.Total != 1 || ingresses.Items[0]["type"] != "ZoneIngressOverview" || ingresses.Items[0]["zoneIngress"] == nil {
		t.Errorf("zoneingresses+insights = %+v", ingresses)
	}
	zoneGetJSON(t, base+"/zoneingresses+insights/zone-1.ingress", http.StatusOK, &raw)
	zoneGetJSON(t, base+"/zoneegresses+insights", http.StatusOK, &ingresses)
	if ingresses.Total != 0 {
		t.Errorf("zoneegresses+insights = %+v", ingresses)
	}
	zoneGetJSON(t, base+"/zoneegresses+insights/nope", http.StatusNotFound, nil)

	var g insights.GlobalInsight
	zoneGetJSON(t, base+"/global-insight", http.StatusOK, &g)
	want := insights.GlobalZones{ControlPlanes: insights.OnlineTotal{Online: 1, Total: 2}, ZoneIngresses: insights.OnlineTotal{Total: 1}}
	if g.Zones != want {
		t.Errorf("global-insight zones = %+v, want %+v", g.Zones, want)
	}

	var index map[string]string
	zoneGetJSON(t, base+"/", http.StatusOK, &index)
	if index["mode"] != "global" {
		t.Errorf("index mode = %q", index["mode"])
	}
}

// TestDataplanesZoneFilter: Kuma's per-zone filter on dataplane lists is
// the kuma.io/zone label filter.
func TestDataplanesZoneFilter(t *testing.T) {
	base, _ := serveZones(t)
	var list struct {
		Total int `json:"total"`
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	zoneGetJSON(t, base+"/meshes/default/dataplanes?filter[labels.kuma.io/zone]=zone-2", http.StatusOK, &list)
	if list.Total != 1 || list.Items[0].Name != "api-1" {
		t.Errorf("zone-2's dataplanes = %+v", list)
	}
	zoneGetJSON(t, base+"/dataplanes?filter%5Blabels.kuma.io%2Fzone%5D=zone-1", http.StatusOK, &list)
	if list.Total != 1 || list.Items[0].Name != "web-1" {
		t.Errorf("zone-1's dataplanes = %+v", list)
	}
}

func TestIndexModeDefaultsToStandalone(t *testing.T) {
	base := serveInsights(t)
	var index map[string]string
	zoneGetJSON(t, base+"/", http.StatusOK, &index)
	if index["mode"] != "standalone" {
		t.Errorf("index mode = %q, want standalone", index["mode"])
	}
}
