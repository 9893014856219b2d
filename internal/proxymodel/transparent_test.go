package proxymodel_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

func tproxySnapshot(passthrough *bool, tp *mesh.TransparentProxying) *proxymodel.MeshSnapshot {
	in := func(port uint32, svc string) mesh.Inbound {
		return mesh.Inbound{Port: port, Tags: map[string]string{mesh.ServiceTag: svc}}
	}
	ms := &mesh.Mesh{}
	if passthrough != nil {
		ms.Networking = &mesh.MeshNetworking{Outbound: &mesh.MeshOutbound{Passthrough: passthrough}}
	}
	return &proxymodel.MeshSnapshot{Mesh: "default", MeshSpec: ms, Dataplanes: []proxymodel.NamedDataplane{
		{Name: "web-1", Spec: &mesh.Dataplane{Networking: &mesh.DataplaneNetworking{
			Address: "10.0.0.1", Inbound: []mesh.Inbound{in(8080, "web")},
			Outbound:            []mesh.Outbound{{Address: "240.0.0.2", Port: 80, Tags: map[string]string{mesh.ServiceTag: "backend"}}},
			TransparentProxying: tp,
		}}},
		{Name: "backend-1", Spec: &mesh.Dataplane{Networking: &mesh.DataplaneNetworking{
			Address: "10.0.0.2", Inbound: []mesh.Inbound{in(9000, "backend"), in(80, "backend")},
		}}},
		{Name: "backend-2", Spec: &mesh.Dataplane{Networking: &mesh.DataplaneNetworking{
			Address: "10.0.0.3", Inbound: []mesh.Inbound{in(9001, "backend")},
		}}},
	}}
}

func outboundKeys(p *proxymodel.Proxy) []string {
	var s []string
	for _, o := range p.Outbounds {
		s = append(s, fmt.Sprintf("%s:%d>%s", o.Address, o.Port, o.Service))
	}
	return s
}

// A Dataplane's transparentProxying becomes the model with Kuma's default
// ports and the mesh's passthrough; the outbounds are the Dataplane's own
// and, per VIP, port 80 and the service's inbound ports.
func TestTransparentProxyModel(t *testing.T) {
	if p, _ := proxymodel.NewIndex(tproxySnapshot(nil, nil)).Build("web-1"); p.TransparentProxy != nil {
		t.Fatalf("TransparentProxy = %+v without transparentProxying", p.TransparentProxy)
	}
	off := false
	ix := proxymodel.NewIndex(tproxySnapshot(&off, &mesh.TransparentProxying{IPFamilyMode: mesh.IPFamilyIPv4, DirectAccessServices: []string{"backend"}}))
	p, err := ix.Build("web-1")
	if err != nil {
		t.Fatal(err)
	}
	want := proxymodel.TransparentProxy{RedirectPortInbound: 15006, RedirectPortOutbound: 15001, IPFamilyMode: "IPv4",
		DirectAccessServices: []string{"backend"}, Passthrough: false}
	if got := *p.TransparentProxy; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("TransparentProxy = %+v, want %+v", got, want)
	}
	if !p.TransparentProxy.DirectAccess("backend") || p.TransparentProxy.DirectAccess("web") || p.TransparentProxy.IPv6() {
		t.Fatal("DirectAccess/IPv6 wrong")
	}
	p.VIPs = []proxymodel.VIP{
		{Service: "backend", Name: "backend.mesh", IPv4: "240.0.0.2", IPv6: "fd00::2"},
		{Service: "web", Name: "web.mesh", IPv4: "240.0.0.3", IPv6: "fd00::3"},
	}
	ix.AddTransparentOutbounds(p)
	ix.AddTransparentOutbounds(p) // again: nothing new
	got := outboundKeys(p)
	wantKeys := []string{"240.0.0.2:80>backend", "240.0.0.2:9000>backend", "240.0.0.2:9001>backend", "240.0.0.3:80>web", "240.0.0.3:8080>web"}
	if !slices.Equal(got, wantKeys) {
		t.Fatalf("outbounds %v, want %v", got, wantKeys)
	}
	if eps := p.Outbounds[1].Endpoints; len(eps) != 3 {
		t.Fatalf("backend VIP outbound endpoints %+v, want the three inbounds", eps)
	}

	// Dual stack (the default) adds the IPv6 VIPs; passthrough defaults on.
	ix = proxymodel.NewIndex(tproxySnapshot(nil, &mesh.TransparentProxying{}))
	p, _ = ix.Build("web-1")
	if !p.TransparentProxy.Passthrough || !p.TransparentProxy.IPv4() || !p.TransparentProxy.IPv6() {
		t.Fatalf("defaults %+v: want passthrough and dual stack", p.TransparentProxy)
	}
	p.VIPs = []proxymodel.VIP{{Service: "web", Name: "web.mesh", IPv4: "240.0.0.3", IPv6: "fd00::3"}}
	ix.AddTransparentOutbounds(p)
	wantKeys = []string{"240.0.0.2:80>backend", "240.0.0.3:80>web", "240.0.0.3:8080>web", "fd00::3:80>web", "fd00::3:8080>web"}
	if got := outboundKeys(p); !slices.Equal(got, wantKeys) {
		t.Fatalf("outbounds %v, want %v", got, wantKeys)
	}
}
