package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/trellis-mesh/trellis/internal/ca"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

func TestIPv4Placeholder(t *testing.T) {
	for n := 7; n <= 15; n++ {
		for _, d := range []byte{'1', '2'} {
			p := ipv4Placeholder(n, d)
			a, err := netip.ParseAddr(p)
			if err != nil || !a.Is4() || a.String() != p || len(p) != n {
				t.Errorf("ipv4Placeholder(%d, %q) = %q: not a canonical IPv4 address of %d characters (%v)", n, d, p, n, err)
			}
		}
	}
}

// Inbound parts made from templates are exactly what building each proxy
// gives, for addresses of every length, with a MeshMetric listener bound
// to the proxy's address; proxies of one shape and address length share a
// template; IPv6 addresses, inbounds on another address and a shape
// whose template fails its check are built proxy by proxy.
func TestInboundTemplatesAreTheWholeBuild(t *testing.T) {
	for _, mode := range []string{"", "STRICT", "PERMISSIVE"} {
		t.Run("mtls="+mode, func(t *testing.T) {
			ctx := context.Background()
			mgr := sharedTestMesh(t, mode)
			apply(t, mgr, `type: MeshMetric
mesh: default
name: metrics
spec:
  targetRef: {kind: Mesh}
  default:
    backends:
    - type: Prometheus
      prometheus: {port: 5670, path: /metrics}
`)
			extra := map[string]string{
				"web-a": "1.2.3.4", "web-b": "5.6.7.8", "web-c": "192.168.100.200", "web-d": "10.20.30.40",
				"web-e": "192.168.100.201", "web-v6": "fd00::1", "api-a": "10.0.0.77",
			}
			// A service named like the placeholder of an 8-character
			// address: its template fails the check.
			apply(t, mgr, extraDataplane("odd-1", ipv4Placeholder(8, '2'), "10.0.0.9"))
			for name, addr := range extra {
				apply(t, mgr, extraDataplane(name, name[:3], addr))
			}
			apply(t, mgr, "type: Dataplane\nmesh: default\nname: web-split\nnetworking:\n  address: 10.9.9.9\n  inbound:\n  - port: 8080\n    address: 10.9.9.10\n    tags:\n      kuma.io/service: web\n")
			cas := ca.New(mgr, slog.New(slog.NewTextHandler(io.Discard, nil)))
			ms, err := newMeshCache(mgr).load(ctx, cas, "default")
			if err != nil {
				t.Fatal(err)
			}
			memo := newOutputMemo()
			proxies := []string{"web-split", "odd-1"}
			for name := range extra {
				proxies = append(proxies, name)
			}
			for i := range 6 {
				proxies = append(proxies, fmt.Sprintf("%s-%d", []string{"web", "api", "db"}[i%3], i+1))
			}
			for _, name := range proxies {
				ps := newProxyState(&nodeInfo{key: proxyKey{Mesh: "default", Name: name}})
				got, _, err := sidecarOutput(ms, memo, ps)
				if err != nil {
					t.Fatal(err)
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
					if g, w := fmt.Sprint(names(got[ti])), fmt.Sprint(names(want[ti])); g != w {
						t.Fatalf("%s %s: names %v, the whole build gives %v", name, typ, g, w)
					}
					for k := range got[ti] {
						if got[ti][k].hash != want[ti][k].hash {
							t.Errorf("%s %s %s: content differs from the whole build", name, typ, got[ti][k].name)
						}
					}
				}
			}
			// web-1 and web-4 (10.0.0.1, 10.0.0.4) share one template;
			// 1.2.3.4 and 5.6.7.8 another; the two 15-character addresses a
			// third. None failed the check.
			good, failed := 0, 0
			for _, tpl := range memo.tpls.m {
				if tpl == nil {
					failed++
					continue
				}
				good++
			}
			// Without mTLS the service's name is not in the inbound part
			// (a TCP inbound), so that template is sound.
			if want := min(1, len(mode)); failed != want {
				t.Errorf("%d templates failed their check, want %d (odd-1's)", failed, want)
			}
			if len(memo.tpls.m) == 0 || good+failed >= countTemplatable(t, ms, proxies) {
				t.Errorf("%d templates for %d templatable proxies: none shared", good, countTemplatable(t, ms, proxies))
			}
		})
	}
}

func countTemplatable(t *testing.T, ms *meshState, names []string) int {
	n := 0
	for _, name := range names {
		p, _, err := ms.model(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := templatable(p); ok {
			n++
		}
	}
	return n
}
