package proxymodel_test

import (
	"fmt"
	"testing"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

func vipTable() map[string]proxymodel.VIP {
	return map[string]proxymodel.VIP{
		"web":     {Service: "web", Name: "web.mesh", IPv4: "240.0.0.1", IPv6: "fd00:fd00::f000:1"},
		"backend": {Service: "backend", Name: "backend.mesh", IPv4: "240.0.0.2", IPv6: "fd00:fd00::f000:2"},
		"redis":   {Service: "redis", Name: "redis.mesh", IPv4: "240.0.0.3", IPv6: "fd00:fd00::f000:3"},
	}
}

func TestSnapshotServices(t *testing.T) {
	snap := tproxySnapshot(nil, nil)
	snap.Dataplanes[2].Spec.Networking.Inbound = append(snap.Dataplanes[2].Spec.Networking.Inbound,
		mesh.Inbound{Port: 1, State: mesh.InboundIgnored, Tags: map[string]string{mesh.ServiceTag: "ignored"}})
	if got := fmt.Sprint(proxymodel.SnapshotServices(snap)); got != "[backend web]" {
		t.Fatalf("SnapshotServices = %s", got)
	}
}

// A transparent proxy gets every VIP, sorted, or only those of its
// reachable services; the addresses follow its IP family mode; a proxy
// without transparentProxying gets none.
func TestVIPsOfTransparentProxies(t *testing.T) {
	for _, tc := range []struct {
		name string
		tp   *mesh.TransparentProxying
		want string
	}{
		{"not transparent", nil, "[]"},
		{"all", &mesh.TransparentProxying{},
			"[{backend backend.mesh 240.0.0.2 fd00:fd00::f000:2} {redis redis.mesh 240.0.0.3 fd00:fd00::f000:3} {web web.mesh 240.0.0.1 fd00:fd00::f000:1}]"},
		{"reachable", &mesh.TransparentProxying{ReachableServices: []string{"redis", "nope"}},
			"[{redis redis.mesh 240.0.0.3 fd00:fd00::f000:3}]"},
		{"ipv4", &mesh.TransparentProxying{IPFamilyMode: mesh.IPFamilyIPv4, ReachableServices: []string{"redis"}},
			"[{redis redis.mesh 240.0.0.3 }]"},
		{"ipv6", &mesh.TransparentProxying{IPFamilyMode: mesh.IPFamilyIPv6, ReachableServices: []string{"redis"}},
			"[{redis redis.mesh  fd00:fd00::f000:3}]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := tproxySnapshot(nil, tc.tp)
			snap.VIPs = vipTable()
			p, err := proxymodel.NewIndex(snap).Build("web-1")
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(p.VIPs); got != tc.want {
				t.Fatalf("VIPs = %s, want %s", got, tc.want)
			}
		})
	}
}

// A changed VIP table changes the fingerprint of transparent proxies only.
func TestVIPsInFingerprint(t *testing.T) {
	fp := func(tp *mesh.TransparentProxying, table map[string]proxymodel.VIP) proxymodel.Fingerprint {
		snap := tproxySnapshot(nil, tp)
		snap.VIPs = table
		f, ok := proxymodel.NewIndex(snap).Fingerprint("web-1")
		if !ok {
			t.Fatal("no fingerprint")
		}
		return f
	}
	changed := vipTable()
	changed["redis"] = proxymodel.VIP{Service: "redis", Name: "redis.mesh", IPv4: "240.0.0.9"}
	tp := &mesh.TransparentProxying{}
	if fp(tp, vipTable()) == fp(tp, changed) {
		t.Error("a transparent proxy's fingerprint ignores the VIPs")
	}
	if fp(tp, vipTable()) != fp(tp, vipTable()) {
		t.Error("the fingerprint is not deterministic")
	}
	if fp(nil, vipTable()) != fp(nil, changed) {
		t.Error("a proxy without transparentProxying depends on the VIPs")
	}
}
