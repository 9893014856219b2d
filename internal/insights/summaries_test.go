package insights_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/meshdefaults"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/memory"
)

func apply(t *testing.T, mgr *manager.Manager, doc string) {
	t.Helper()
	res, err := mgr.Registry().Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mgr.Apply(context.Background(), res); err != nil {
		t.Fatal(err)
	}
}

// connect records a proxy's stream in its insight; online leaves it open.
func connect(t *testing.T, st store.Store, name string, online bool, backend string) {
	t.Helper()
	err := insights.Update(context.Background(), st, "default", name, func(in *insights.DataplaneInsight) {
		s := insights.Subscription{ID: name, ConnectTime: time.Now(), Version: map[string]string{"trellisDp": "1.2.3"}}
		if !online {
			now := time.Now()
			s.DisconnectTime = &now
		}
		in.Add(s)
		if backend != "" {
			exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			in.MTLS = &insights.MTLS{CertificateExpirationTime: &exp, IssuedBackend: backend, SupportedBackends: []string{backend}, CertificateRegenerations: 1}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func dataplane(name, body string) string {
	return "type: Dataplane\nmesh: default\nname: " + name + "\nnetworking:\n  address: 127.0.0.1\n" + body
}

func setup(t *testing.T) (*insights.Reader, store.Store) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := memory.New()
	mgr := manager.New(st, kinds.Registry())
	mgr.OnCreate(meshdefaults.Hook(mgr, log))
	if err := meshdefaults.EnsureDefaultMesh(context.Background(), mgr); err != nil {
		t.Fatal(err)
	}
	inbound := func(port, svc, ready string) string {
		s := "  - port: " + port + "\n    tags:\n      kuma.io/service: " + svc + "\n"
		if ready != "" {
			s += "    health:\n      ready: " + ready + "\n"
		}
		return s
	}
	apply(t, mgr, dataplane("web-1", "  inbound:\n"+inbound("8001", "web", "")))
	apply(t, mgr, dataplane("web-2", "  inbound:\n"+inbound("8002", "web", "")))
	apply(t, mgr, dataplane("api-1", "  inbound:\n"+inbound("8003", "api", "false")+inbound("8004", "api", "true")))
	apply(t, mgr, dataplane("db-1", "  inbound:\n"+inbound("8005", "db", "")))
	apply(t, mgr, dataplane("gw-1", "  gateway:\n    type: DELEGATED\n    tags:\n      kuma.io/service: edge\n"))
	connect(t, st, "web-1", true, "ca-1")
	connect(t, st, "web-2", false, "ca-1")
	connect(t, st, "api-1", true, "")
	connect(t, st, "gw-1", true, "")
	// db-1 never connected.
	return insights.NewReader(mgr), st
}

// The summaries count proxies by status (online, offline, partially
// degraded from inbound health), services by the status of their proxies,
// versions, mTLS backends, policies and resources.
func TestSummaries(t *testing.T) {
	r, _ := setup(t)
	ctx := context.Background()
	mis, err := r.MeshInsights(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	mi := mis[0]
	if mi.Type != "MeshInsight" || mi.Name != "default" {
		t.Errorf("type/name %s/%s", mi.Type, mi.Name)
	}
	if want := (insights.DataplaneStat{Total: 5, Online: 2, Offline: 2, PartiallyDegraded: 1}); mi.Dataplanes != want {
		t.Errorf("dataplanes %+v, want %+v", mi.Dataplanes, want)
	}
	if mi.DataplanesByType.Gateway.Total != 1 || mi.DataplanesByType.Standard.Total != 4 {
		t.Errorf("by type %+v", mi.DataplanesByType)
	}
	if mi.DPVersions.KumaDp["1.2.3"].Total != 4 || mi.MTLS.IssuedBackends["ca-1"] != (insights.DataplaneStat{Total: 2, Online: 1, Offline: 1}) {
		t.Errorf("versions %+v, mTLS %+v", mi.DPVersions, mi.MTLS)
	}
	if mi.Services != (insights.ServiceStat{Total: 3, Internal: 3}) {
		t.Errorf("services %+v", mi.Services)
	}
	if mi.Policies["MeshTimeout"].Total == 0 || mi.Resources["Dataplane"].Total != 5 {
		t.Errorf("policies %v, resources %v", mi.Policies, mi.Resources)
	}

	svcs, err := r.ServiceInsights(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range svcs {
		got[s.Name] = s.Status + "/" + s.ServiceType
	}
	want := map[string]string{"api": "partially_degraded/internal", "db": "offline/internal", "edge": "online/gateway_delegated", "web": "partially_degraded/internal"}
	if js, _ := json.Marshal(got); string(js) != mustJSON(want) {
		t.Errorf("services %s, want %s", js, mustJSON(want))
	}
	if svcs[0].Name != "api" || svcs[len(svcs)-1].Name != "web" || svcs[len(svcs)-1].IssuedBackends["ca-1"] != 2 {
		t.Errorf("order or backends: %+v", svcs)
	}

	g, err := r.GlobalInsight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g.Meshes.Total != 1 || g.Dataplanes.Standard.Total != 4 || g.Dataplanes.GatewayDelegated.Online != 1 ||
		g.Services.Internal.Total != 3 || g.Services.Internal.Offline != 1 || g.Services.GatewayDelegated.Total != 1 || g.Services.Total != 4 {
		t.Errorf("global %+v", g)
	}
	if g.Resources["Mesh"].Total != 1 || g.Policies.Total == 0 {
		t.Errorf("global resources %v policies %v", g.Resources, g.Policies)
	}
}

func TestUnknownMeshIsNotFound(t *testing.T) {
	r, _ := setup(t)
	if _, err := r.MeshInsights(context.Background(), "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if _, err := r.ServiceInsights(context.Background(), "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
