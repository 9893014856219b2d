package proxymodel_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

func dataplane(t *testing.T, doc string) proxymodel.NamedDataplane {
	t.Helper()
	res, err := kinds.Registry().Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return proxymodel.NamedDataplane{Name: res.Meta.Name, Labels: res.Meta.Labels, Spec: res.Spec.(*mesh.Dataplane)}
}

const webDP = `type: Dataplane
mesh: default
name: web-1
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    tags:
      kuma.io/service: web
  outbound:
  - port: 20001
    tags:
      kuma.io/service: api
`

func apiDP(addr string) string {
	return `type: Dataplane
mesh: default
name: api-` + addr + `
networking:
  address: ` + addr + `
  inbound:
  - port: 8080
    tags:
      kuma.io/service: api
      kuma.io/protocol: http
`
}

const dbDP = `type: Dataplane
mesh: default
name: db-1
networking:
  address: 10.0.2.1
  inbound:
  - port: 5432
    tags:
      kuma.io/service: db
`

func fingerprint(t *testing.T, snap *proxymodel.MeshSnapshot, name string) proxymodel.Fingerprint {
	t.Helper()
	f, ok := proxymodel.NewIndex(snap).Fingerprint(name)
	if !ok {
		t.Fatalf("no fingerprint for %s", name)
	}
	return f
}

// A proxy's fingerprint follows what its model is built from: its
// Dataplane, the endpoints of the services it calls and the policies, and
// nothing else (another service's endpoints).
func TestFingerprintFollowsTheModelsInputs(t *testing.T) {
	web, api, db := dataplane(t, webDP), dataplane(t, apiDP("10.0.1.1")), dataplane(t, dbDP)
	base := func() *proxymodel.MeshSnapshot {
		return &proxymodel.MeshSnapshot{Mesh: "default", Dataplanes: []proxymodel.NamedDataplane{web, api, db}}
	}
	want := fingerprint(t, base(), "web-1")
	if got := fingerprint(t, base(), "web-1"); got != want {
		t.Fatal("two indexes of one snapshot give different fingerprints")
	}

	other := base()
	other.Dataplanes = append(other.Dataplanes, dataplane(t, `type: Dataplane
mesh: default
name: db-2
networking:
  address: 10.0.2.2
  inbound:
  - port: 5432
    tags:
      kuma.io/service: db
`))
	if fingerprint(t, other, "web-1") != want {
		t.Error("an endpoint of a service web-1 does not call changed its fingerprint")
	}

	for name, snap := range map[string]*proxymodel.MeshSnapshot{
		"an endpoint of api added": {Mesh: "default", Dataplanes: []proxymodel.NamedDataplane{web, api, db, dataplane(t, apiDP("10.0.1.2"))}},
		"api offline":              {Mesh: "default", Dataplanes: []proxymodel.NamedDataplane{web, api, db}, Offline: map[string]bool{"api-10.0.1.1": true}},
		"a policy":                 {Mesh: "default", Dataplanes: []proxymodel.NamedDataplane{web, api, db}, Policies: map[string][]proxymodel.PolicyItem{"MeshTrafficPermission": {{Name: "p"}}}},
		"a label":                  {Mesh: "default", Dataplanes: []proxymodel.NamedDataplane{{Name: web.Name, Labels: map[string]string{"a": "b"}, Spec: web.Spec}, api, db}},
		"the stored version":       {Mesh: "default", Dataplanes: []proxymodel.NamedDataplane{{Name: web.Name, Spec: web.Spec, Version: "7"}, api, db}},
		"the mesh spec":            {Mesh: "default", MeshSpec: &mesh.Mesh{}, Dataplanes: []proxymodel.NamedDataplane{web, api, db}},
	} {
		if fingerprint(t, snap, "web-1") == want {
			t.Errorf("%s: the fingerprint did not change", name)
		}
	}

	moved := dataplane(t, webDP)
	moved.Spec.Networking.Address = "10.0.0.9"
	if fingerprint(t, &proxymodel.MeshSnapshot{Mesh: "default", Dataplanes: []proxymodel.NamedDataplane{moved, api, db}}, "web-1") == want {
		t.Error("a changed spec (no version) did not change the fingerprint")
	}
}

func TestHashTellsValuesApart(t *testing.T) {
	type s struct {
		A []string
		B map[string]string
		C *int
	}
	one := 1
	values := []any{s{}, s{A: []string{}}, s{A: []string{""}}, s{B: map[string]string{}}, s{B: map[string]string{"a": ""}},
		s{C: &one}, s{A: []string{"ab"}}, s{A: []string{"a", "b"}}}
	seen := map[proxymodel.Fingerprint]int{}
	for i, v := range values {
		f, ok := proxymodel.Hash(v)
		if !ok {
			t.Fatalf("value %d: not hashable", i)
		}
		if j, dup := seen[f]; dup {
			t.Errorf("values %d and %d hash alike", j, i)
		}
		seen[f] = i
	}
	if _, ok := proxymodel.Hash(make(chan int)); ok {
		t.Error("a channel hashed")
	}
}
