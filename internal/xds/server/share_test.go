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
		res, err := mgr.Registry().Decode([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mgr.Apply(context.Background(), res); err != nil {
			t.Fatal(err)
		}
	}
	return mgr
}

// The merged inbound and outbound parts are exactly the resources
// build.Sidecar makes of the whole model, with mTLS off, STRICT and
// PERMISSIVE; outbound parts are shared between proxies of one service,
// and a second recompute reuses everything.
func TestSharedOutputIsTheWholeBuild(t *testing.T) {
	for _, mode := range []string{"", "STRICT", "PERMISSIVE"} {
		t.Run("mtls="+mode, func(t *testing.T) {
			ctx := context.Background()
			mgr := sharedTestMesh(t, mode)
			cas := ca.New(mgr, slog.New(slog.NewTextHandler(io.Discard, nil)))
			cache := newMeshCache(mgr)
			memo := newOutputMemo()
			proxies := map[string]*proxyState{}
			outputs := map[string]*output{}
			for round := range 2 {
				ms, err := cache.load(ctx, cas, "default")
				if err != nil {
					t.Fatal(err)
				}
				for i := range 6 {
					name := fmt.Sprintf("%s-%d", []string{"web", "api", "db"}[i%3], i+1)
					ps := proxies[name]
					if ps == nil {
						ps = &proxyState{info: &nodeInfo{key: proxyKey{Mesh: "default", Name: name}}}
						proxies[name] = ps
					}
					before := ps.inbound
					got, _, err := sidecarOutput(ms, memo, ps)
					if err != nil {
						t.Fatal(err)
					}
					outputs[name] = got
					if round == 1 && ps.inbound != before {
						t.Errorf("%s: the inbound part was rebuilt with an unchanged model", name)
					}
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
				if n := len(memo.parts); n != 3 {
					t.Errorf("round %d: %d outbound parts for 3 services", round, n)
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
