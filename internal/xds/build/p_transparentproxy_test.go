package build_test

import (
	"bytes"
	"slices"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/allowlist"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// testVIPs stand for the virtual IPs the control plane allocates.
var testVIPs = map[string]proxymodel.VIP{
	"backend": {Service: "backend", Name: "backend.mesh", IPv4: "240.0.0.1", IPv6: "fd00:fd00::1"},
	"redis":   {Service: "redis", Name: "redis.mesh", IPv4: "240.0.0.2", IPv6: "fd00:fd00::2"},
	"web":     {Service: "web", Name: "web.mesh", IPv4: "240.0.0.3", IPv6: "fd00:fd00::3"},
}

// transparentProxy builds the model of a transparent proxy of
// testdata/transparent/mesh.yaml with the VIPs of its reachable services.
func transparentProxy(t *testing.T, name string, passthrough bool) *proxymodel.Proxy {
	t.Helper()
	ix := proxymodel.NewIndex(loadSnapshot(t, "testdata/transparent/mesh.yaml"))
	p, err := ix.Build(name)
	if err != nil {
		t.Fatal(err)
	}
	if p.TransparentProxy == nil {
		t.Fatalf("%s: no transparent proxy in the model", name)
	}
	p.TransparentProxy.Passthrough = passthrough
	p.VIPs = nil
	for _, svc := range []string{"backend", "redis", "web"} {
		reach := p.TransparentProxy.ReachableServices
		if len(reach) == 0 || slices.Contains(reach, svc) {
			p.VIPs = append(p.VIPs, testVIPs[svc])
		}
	}
	ix.AddTransparentOutbounds(p)
	return p
}

func TestTransparentProxyGolden(t *testing.T) {
	for _, c := range []struct {
		golden, proxy string
		passthrough   bool
		mtls          string
	}{
		{"web-1-passthrough", "web-1", true, ""},
		{"web-1-strict-no-passthrough", "web-1", false, proxymodel.MTLSStrict},
		{"backend-1-permissive-no-passthrough", "backend-1", false, proxymodel.MTLSPermissive},
		{"backend-1-passthrough", "backend-1", true, ""},
	} {
		t.Run(c.golden, func(t *testing.T) {
			p := transparentProxy(t, c.proxy, c.passthrough)
			if c.mtls != "" {
				p.MTLS = testMTLS(t, c.mtls, p.Services)
			}
			r, err := build.Sidecar(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, res := range r.ByType() {
				for _, x := range res {
					if err := x.(interface{ ValidateAll() error }).ValidateAll(); err != nil {
						t.Fatalf("%T does not pass Envoy's validation: %v", x, err)
					}
					if errs := allowlist.Check(x.(proto.Message)); len(errs) > 0 {
						t.Errorf("trellis-dp would NACK %T: %v", x, errs)
					}
				}
			}
			first := dump(t, r)
			r2, _ := build.Sidecar(p)
			if !bytes.Equal(first, dump(t, r2)) {
				t.Fatal("two builds of the same model differ")
			}
			golden(t, "transparent/"+c.golden, first)
		})
	}
}

// The inbound and outbound parts built apart hold every listener the
// whole build has, as the control plane's sharing needs.
func TestTransparentProxyParts(t *testing.T) {
	p := transparentProxy(t, "web-1", true)
	all, err := build.Sidecar(p)
	if err != nil {
		t.Fatal(err)
	}
	in, out := *p, *p
	in.Outbounds, out.Inbounds = nil, nil
	ri, err := build.SidecarPart(&in, build.PartInbound)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := build.SidecarPart(&out, build.PartOutbound)
	if err != nil {
		t.Fatal(err)
	}
	names := func(ls []*listenerv3.Listener) []string {
		var s []string
		for _, l := range ls {
			s = append(s, l.GetName())
		}
		slices.Sort(s)
		return s
	}
	got := names(append(ri.Listeners, ro.Listeners...))
	want := names(all.Listeners)
	if !slices.Equal(got, want) {
		t.Fatalf("listeners of the parts %v, of the whole build %v", got, want)
	}
	if !slices.Equal(want, []string{"inbound:passthrough:ipv4", "inbound:passthrough:ipv6", "outbound:passthrough:ipv4", "outbound:passthrough:ipv6"}) {
		t.Fatalf("listeners %v: want only the four redirect listeners", want)
	}
}

// Two inbounds on one port cannot be told apart by a redirect listener.
func TestTransparentProxyInboundPortClash(t *testing.T) {
	p := transparentProxy(t, "web-1", true)
	dup := p.Inbounds[0]
	dup.Address = "10.0.0.9"
	p.Inbounds = append(p.Inbounds, dup)
	if _, err := build.Sidecar(p); err == nil {
		t.Fatal("built a transparent proxy whose inbounds share a port")
	}
}
