package meshtls_test

import (
	"encoding/json"
	"testing"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/policy/meshtls"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

func dataplane(svc string, port uint32) proxymodel.NamedDataplane {
	return proxymodel.NamedDataplane{Name: svc + "-1", Spec: &mesh.Dataplane{Networking: &mesh.DataplaneNetworking{
		Address: "10.0.0.1",
		Inbound: []mesh.Inbound{{Port: port, Tags: map[string]string{mesh.ServiceTag: svc}}},
	}}}
}

func TestModeAndMeshWideConf(t *testing.T) {
	spec := func(s string) json.RawMessage { return json.RawMessage(s) }
	snap := &proxymodel.MeshSnapshot{
		Mesh:       "default",
		Dataplanes: []proxymodel.NamedDataplane{dataplane("backend", 8080), dataplane("web", 8081)},
		Policies: map[string][]proxymodel.PolicyItem{meshtls.Kind: {
			{Name: "mesh-wide", Spec: spec(`{"targetRef":{"kind":"Mesh"},"rules":[{"default":{"tlsVersion":{"min":"TLS13"}}}]}`)},
			{Name: "backend-permissive", Spec: spec(`{"targetRef":{"kind":"MeshService","name":"backend"},"rules":[{"default":{"mode":"Permissive"}}]}`)},
		}},
	}
	ix := proxymodel.NewIndex(snap, meshtls.Applier{})
	backend, err := ix.Build("backend-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := backend.Inbounds[0].MTLSMode; got != proxymodel.MTLSPermissive {
		t.Errorf("backend inbound mode = %q, want %q", got, proxymodel.MTLSPermissive)
	}
	web, err := ix.Build("web-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := web.Inbounds[0].MTLSMode; got != "" {
		t.Errorf("web inbound mode = %q, want the mesh's (empty)", got)
	}
	single := web.Policies[meshtls.Kind].Single
	if single == nil || string(single.Conf) != `{"tlsVersion":{"min":"TLS13"}}` {
		t.Errorf("web mesh-wide conf = %v, want the tlsVersion of mesh-wide", single)
	}
}
