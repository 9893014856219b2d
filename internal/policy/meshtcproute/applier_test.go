package meshtcproute_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/policy/meshhttproute"
	"github.com/trellis-mesh/trellis/internal/policy/meshtcproute"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

// snapshot decodes YAML documents (Dataplanes and policies) with the
// resource registry, validating them as the API does.
func snapshot(t *testing.T, docs ...string) *proxymodel.MeshSnapshot {
	t.Helper()
	snap := &proxymodel.MeshSnapshot{Mesh: "default", Policies: map[string][]proxymodel.PolicyItem{}}
	for _, doc := range docs {
		res, err := kinds.Registry().Decode([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if dp, ok := res.Spec.(*mesh.Dataplane); ok {
			snap.Dataplanes = append(snap.Dataplanes, proxymodel.NamedDataplane{Name: res.Meta.Name, Spec: dp})
			continue
		}
		snap.Policies[res.Desc.Kind] = append(snap.Policies[res.Desc.Kind], proxymodel.PolicyItem{Name: res.Meta.Name, Spec: res.Spec})
	}
	return snap
}

const dataplanes = `
type: Dataplane
name: web-1
mesh: default
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    tags: {kuma.io/service: web}
  outbound:
  - port: 10001
    tags: {kuma.io/service: db}
  - port: 10002
    tags: {kuma.io/service: api}
---
type: Dataplane
name: db-1
mesh: default
networking:
  address: 10.0.0.2
  inbound:
  - port: 5432
    tags: {kuma.io/service: db, role: primary}
---
type: Dataplane
name: db-2
mesh: default
networking:
  address: 10.0.0.3
  inbound:
  - port: 5432
    tags: {kuma.io/service: db, role: replica}
---
type: Dataplane
name: api-1
mesh: default
networking:
  address: 10.0.0.4
  inbound:
  - port: 80
    tags: {kuma.io/service: api, kuma.io/protocol: http}`

// The most specific policy's backendRefs replace the others' as a whole;
// the clusters get the subsets' endpoints.
func TestMostSpecificBackendsWin(t *testing.T) {
	docs := append(splitDocs(dataplanes), `
type: MeshTCPRoute
mesh: default
name: mesh-wide
spec:
  to:
  - targetRef: {kind: MeshService, name: db}
    rules:
    - default:
        backendRefs:
        - {kind: MeshServiceSubset, name: db, tags: {role: primary}, weight: 1}
        - {kind: MeshServiceSubset, name: db, tags: {role: replica}, weight: 1}`, `
type: MeshTCPRoute
mesh: default
name: web-only
spec:
  targetRef: {kind: MeshService, name: web}
  to:
  - targetRef: {kind: MeshService, name: db}
    rules:
    - default:
        backendRefs: [{kind: MeshServiceSubset, name: db, tags: {role: primary}}]`)
	ix := proxymodel.NewIndex(snapshot(t, docs...), meshhttproute.Applier{}, meshtcproute.Applier{})
	p, err := ix.Build("web-1")
	if err != nil {
		t.Fatal(err)
	}
	db := p.Outbounds[0]
	primary := proxymodel.SubsetClusterName("db", map[string]string{"role": "primary"})
	if want := []proxymodel.RouteBackend{{Cluster: primary, Weight: 1}}; !reflect.DeepEqual(db.TCPBackends, want) {
		t.Fatalf("TCPBackends = %+v, want %+v", db.TCPBackends, want)
	}
	if len(db.RouteClusters) != 1 || db.RouteClusters[0].Name != primary || len(db.RouteClusters[0].Endpoints) != 1 ||
		db.RouteClusters[0].Endpoints[0].Address != "10.0.0.2" || db.RouteClusters[0].Protocol != mesh.ProtocolTCP {
		t.Fatalf("RouteClusters = %+v, want %s with db-1 only", db.RouteClusters, primary)
	}
	if p.Outbounds[1].TCPBackends != nil {
		t.Fatalf("api has TCP backends %+v without a policy for it", p.Outbounds[1].TCPBackends)
	}
}

// An HTTP outbound routed by a MeshTCPRoute becomes TCP, unless a
// MeshHTTPRoute names it too.
func TestHTTPRouteWins(t *testing.T) {
	tcp := `
type: MeshTCPRoute
mesh: default
name: api-tcp
spec:
  to:
  - targetRef: {kind: MeshService, name: api}
    rules:
    - default:
        backendRefs: [{kind: MeshService, name: api}]`
	http := `
type: MeshHTTPRoute
mesh: default
name: api-http
spec:
  to:
  - targetRef: {kind: MeshService, name: api}
    rules:
    - matches: [{path: {type: PathPrefix, value: /v2}}]
      default: {}`
	for _, c := range []struct {
		name      string
		policies  []string
		protocol  string
		tcpRouted bool
	}{
		{"tcp route only", []string{tcp}, mesh.ProtocolTCP, true},
		{"both", []string{tcp, http}, mesh.ProtocolHTTP, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			snap := snapshot(t, append(splitDocs(dataplanes), c.policies...)...)
			p, err := proxymodel.NewIndex(snap, meshhttproute.Applier{}, meshtcproute.Applier{}).Build("web-1")
			if err != nil {
				t.Fatal(err)
			}
			api := p.Outbounds[1]
			if api.Protocol != c.protocol || (api.TCPBackends != nil) != c.tcpRouted || (api.HTTPRoutes != nil) == c.tcpRouted {
				t.Fatalf("api: protocol %s, TCPBackends %+v, %d HTTP routes", api.Protocol, api.TCPBackends, len(api.HTTPRoutes))
			}
		})
	}
}

// splitDocs splits YAML documents separated by "---" lines.
func splitDocs(s string) []string { return strings.Split(s, "\n---\n") }
