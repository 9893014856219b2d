package build_test

import (
	"os"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/policy/meshtrafficpermission"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// TestSidecarRBACGolden runs the MeshTrafficPermissions of
// testdata/mesh-permissions.yaml through the proxy model into the inbound
// listeners: a network RBAC filter before tcp_proxy (redis), an HTTP one
// before the router (backend), on every chain of the listener.
func TestSidecarRBACGolden(t *testing.T) {
	snap := loadSnapshot(t, "testdata/mesh.yaml")
	raw, err := os.ReadFile("testdata/mesh-permissions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	snap.Policies = map[string][]proxymodel.PolicyItem{}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		res, err := kinds.Registry().Decode([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		snap.Policies[res.Desc.Kind] = append(snap.Policies[res.Desc.Kind], proxymodel.PolicyItem{Name: res.Meta.Name, Labels: res.Meta.Labels, Spec: res.Spec})
	}
	ix := proxymodel.NewIndex(snap, meshtrafficpermission.Applier{})
	for _, c := range []struct{ name, mode string }{
		{"backend-1", proxymodel.MTLSStrict},
		{"redis-1", proxymodel.MTLSPermissive},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := ix.Build(c.name)
			if err != nil {
				t.Fatal(err)
			}
			p.MTLS = testMTLS(t, c.mode, p.Services)
			r, err := build.Sidecar(p)
			if err != nil {
				t.Fatal(err)
			}
			var inbound build.Resources
			for _, l := range r.Listeners {
				if err := l.ValidateAll(); err != nil {
					t.Fatalf("listener %s does not pass Envoy's validation: %v", l.Name, err)
				}
				if strings.HasPrefix(l.Name, "inbound:") {
					inbound.Listeners = append(inbound.Listeners, l)
				}
			}
			golden(t, "sidecar-rbac-"+c.name, dump(t, &inbound))
		})
	}
}
