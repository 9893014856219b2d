package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/trellis-mesh/trellis/internal/ca"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store/memory"
	"github.com/trellis-mesh/trellis/internal/vip"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// Transparent proxies share outbound parts too: the merged parts are
// exactly the whole build (redirect listeners included), and two
// transparent proxies of one service share their outbound redirect
// listener; a proxy that may reach fewer services does not.
func TestSharedOutputTransparentProxy(t *testing.T) {
	for _, mode := range []string{"", "STRICT", "PERMISSIVE"} {
		t.Run("mtls="+mode, func(t *testing.T) {
			st := memory.New()
			mgr := manager.New(st, kinds.Registry())
			meshDoc := "type: Mesh\nname: default\n"
			if mode != "" {
				meshDoc += "mtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\n    mode: " + mode + "\n"
			}
			apply(t, mgr, meshDoc)
			for i := range 6 {
				svc := []string{"web", "api", "db"}[i%3]
				proto := []string{"http", "grpc", "tcp"}[i%3]
				reach := ""
				if i == 3 {
					reach = "    reachableServices: [db]\n"
				}
				apply(t, mgr, fmt.Sprintf(`type: Dataplane
mesh: default
name: %[1]s-%[2]d
networking:
  address: 10.0.0.%[2]d
  inbound:
  - port: 8080
    tags:
      kuma.io/service: %[1]s
      kuma.io/protocol: %[3]s
  transparentProxying:
    directAccessServices: [db]
%[4]s`, svc, i+1, proto, reach))
			}
			cas := ca.New(mgr, slog.New(slog.NewTextHandler(io.Discard, nil)))
			cache := newMeshCache(mgr)
			cache.vips = vip.New(st, vip.DefaultConfig(), nil)
			ms, err := cache.load(context.Background(), cas, "default")
			if err != nil {
				t.Fatal(err)
			}
			memo := newOutputMemo()
			outputs := map[string]*output{}
			for i := range 6 {
				name := fmt.Sprintf("%s-%d", []string{"web", "api", "db"}[i%3], i+1)
				ps := newProxyState(&nodeInfo{key: proxyKey{Mesh: "default", Name: name}})
				got, _, err := sidecarOutput(ms, memo, ps)
				if err != nil {
					t.Fatal(err)
				}
				outputs[name] = got
				p, _, err := ms.model(name)
				if err != nil {
					t.Fatal(err)
				}
				if p.TransparentProxy == nil || len(p.VIPs) == 0 {
					t.Fatalf("%s: no transparent proxy or VIPs in the model: %+v", name, p.VIPs)
				}
				res, err := build.Sidecar(p)
				if err != nil {
					t.Fatal(err)
				}
				want, err := newOutput(res)
				if err != nil {
					t.Fatal(err)
				}
				for ti, typ := range xdsTypes {
					if g, w := names(got[ti]), names(want[ti]); fmt.Sprint(g) != fmt.Sprint(w) {
						t.Fatalf("%s %s: names %v, the whole build gives %v", name, typ, g, w)
					}
					for k := range got[ti] {
						if got[ti][k].hash != want[ti][k].hash {
							t.Errorf("%s %s %s: content differs from the whole build", name, typ, got[ti][k].name)
						}
					}
				}
			}
			const li = 0 // listeners
			redirect := func(name string) *item {
				for k := range outputs[name][li] {
					if outputs[name][li][k].name == "outbound:passthrough:ipv4" {
						return &outputs[name][li][k]
					}
				}
				t.Fatalf("%s has no outbound:passthrough:ipv4: %v", name, names(outputs[name][li]))
				return nil
			}
			if a, b := redirect("api-2"), redirect("api-5"); a.res != b.res {
				t.Error("api-2 and api-5 do not share their outbound redirect listener")
			}
			if a, b := redirect("web-1"), redirect("web-4"); a.hash == b.hash {
				t.Error("web-4 reaches only db but has web-1's outbound redirect listener")
			}
		})
	}
}
