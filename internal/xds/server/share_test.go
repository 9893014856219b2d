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
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// sharedTestMesh applies a mesh (mTLS mode, or off when empty), a
// MeshTrafficPermission and Dataplanes with HTTP and TCP inbounds, several
// inbounds, outbounds to one service twice, and a proxy serving two
// services, and returns the manager.
func sharedTestMesh(t *testing.T, mode string) *manager.Manager {
	t.Helper()
	mgr := manager.New(memory.New(), kinds.Registry())
	meshDoc := "type: Mesh\nname: default\n"
	if mode != "" {
		meshDoc += "mtls:\n  enabledBackend: ca-1\n  backends:\n  - name: ca-1\n    type: builtin\n    mode: " + mode + "\n"
	}
	docs := []string{meshDoc, `type: MeshTrafficPermission
name: mtp
mesh: default
spec:
  targetRef:
    kind: Mesh
  from:
  - targetRef:
      kind: MeshService
      name: web
    default:
      action: Deny
  - targetRef:
      kind: Mesh
    default:
      action: Allow
`}
	for i := range 6 {
		svc := []string{"web", "api", "db"}[i%3]
		proto := []string{"http", "grpc", "tcp"}[i%3]
		docs = append(docs, fmt.Sprintf(`type: Dataplane
mesh: default
name: %[1]s-%[2]d
networking:
  address: 10.0.0.%[2]d
  inbound:
  - port: 8080
    servicePort: 18080
    tags:
      kuma.io/service: %[1]s
      kuma.io/protocol: %[3]s
  - port: 9090
    servicePort: 19090
    tags:
      kuma.io/service: %[1]s-admin
  outbound:
  - port: 20001
    tags:
      kuma.io/service: api
  - port: 20002
    tags:
      kuma.io/service: db
  - address: 127.0.0.2
    port: 20001
    tags:
      kuma.io/service: api
`, svc, i+1, proto))
	}
	for _, doc := range docs {
		apply(t, mgr, doc)
	}
	return mgr
}

// apply decodes and applies a resource.
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

func extraDataplane(name, svc, addr string) string {
	return fmt.Sprintf("type: Dataplane\nmesh: default\nname: %s\nnetworking:\n  address: %s\n  inbound:\n  - port: 8080\n    tags:\n      kuma.io/service: %s\n", name, addr, svc)
}

// The merged inbound and outbound parts are exactly the resources
// build.Sidecar makes of the whole model, with mTLS off, STRICT and
// PERMISSIVE; outbound parts are shared between proxies of one service; a
// recompute with nothing changed, or with an endpoint of a service no
// proxy calls, reuses every output; a new endpoint of a called service
// changes them.
func TestSharedOutputIsTheWholeBuild(t *testing.T) {
	rounds := []struct {
		change    func(*testing.T, *manager.Manager)
		unchanged bool
	}{
		{change: func(*testing.T, *manager.Manager) {}},
		{change: func(*testing.T, *manager.Manager) {}, unchanged: true},
		{change: func(t *testing.T, mgr *manager.Manager) { apply(t, mgr, extraDataplane("lone-1", "lone", "10.0.9.1")) }, unchanged: true},
		{change: func(t *testing.T, mgr *manager.Manager) { apply(t, mgr, extraDataplane("db-9", "db", "10.0.9.2")) }},
	}
	for _, mode := range []string{"", "STRICT", "PERMISSIVE"} {
		t.Run("mtls="+mode, func(t *testing.T) {
			ctx := context.Background()
			mgr := sharedTestMesh(t, mode)
			cas := ca.New(mgr, slog.New(slog.NewTextHandler(io.Discard, nil)))
			cache := newMeshCache(mgr)
			memo := newOutputMemo()
			proxies := map[string]*proxyState{}
			outputs := map[string]*output{}
			for round, rc := range rounds {
				rc.change(t, mgr)
				ms, err := cache.load(ctx, cas, "default")
				if err != nil {
					t.Fatal(err)
				}
				for i := range 6 {
					name := fmt.Sprintf("%s-%d", []string{"web", "api", "db"}[i%3], i+1)
					ps := proxies[name]
					if ps == nil {
						ps = newProxyState(&nodeInfo{key: proxyKey{Mesh: "default", Name: name}})
						proxies[name] = ps
					}
					got, _, err := sidecarOutput(ms, memo, ps)
					if err != nil {
						t.Fatal(err)
					}
					if same := got == outputs[name]; same != rc.unchanged {
						t.Errorf("round %d, %s: output reused = %v, want %v", round, name, same, rc.unchanged)
					}
					outputs[name] = got
					p, _, err := ms.model(name)
					if err != nil {
						t.Fatal(err)
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
				// The merged outputs, not a fallback to whole builds: two
				// proxies of one service share their outbound resources.
				a, b := outputs["web-1"], outputs["web-4"]
				ci := 2 // clusters
				if a[ci][0].name != "api" || b[ci][0].name != "api" || a[ci][0].res != b[ci][0].res {
					t.Errorf("web-1 and web-4 do not share the cluster api: %v, %v", names(a[ci]), names(b[ci]))
				}
				memo.sweep()
			}
		})
	}
}

func names(items []item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.name)
	}
	return out
}
