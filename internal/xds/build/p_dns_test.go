package build_test

import (
	"testing"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// dnsProxy is a transparent proxy with VIPs and a DNS port, made by hand
// as the control plane makes it.
func dnsProxy() *proxymodel.Proxy {
	return &proxymodel.Proxy{
		Mesh: "default", Name: "web-1", Services: []string{"web"},
		TransparentProxy: &proxymodel.TransparentProxy{RedirectPortInbound: 15006, RedirectPortOutbound: 15001},
		DNSPort:          15053,
		VIPs: []proxymodel.VIP{
			{Service: "backend", Name: "backend.mesh", IPv4: "240.0.0.2", IPv6: "fd00:fd00::f000:2"},
			{Service: "backend_kuma-demo_svc_8080", Name: "backend_kuma-demo_svc_8080.mesh", IPv4: "240.0.0.4", IPv6: "fd00:fd00::f000:4"},
			{Service: "bad/name", Name: "bad/name.mesh", IPv4: "240.0.0.5"},
			{Service: "redis", Name: "redis.mesh", IPv4: "240.0.0.3"},
		},
	}
}

func dnsListeners(r *build.Resources) int {
	n := 0
	for _, l := range r.Listeners {
		if l.GetName() == build.DNSListenerName {
			n++
		}
	}
	return n
}

// The DNS listener answers every VIP's name (and the "." form of a name
// with "_"), skips names DNS cannot carry, and knows the mesh domain.
func TestDNSListenerGolden(t *testing.T) {
	r, err := build.Sidecar(dnsProxy())
	if err != nil {
		t.Fatal(err)
	}
	checkResources(t, "web-1", r)
	if dnsListeners(r) != 1 {
		t.Fatalf("%d DNS listeners, want 1", dnsListeners(r))
	}
	// Only the DNS listener: the transparent proxy's other resources have
	// golden files of their own.
	dns := &build.Resources{}
	for _, l := range r.Listeners {
		if l.GetName() == build.DNSListenerName {
			dns.Listeners = append(dns.Listeners, l)
		}
	}
	golden(t, "dns/dns-web-1", dump(t, dns))

	// The outbound part carries it (the control plane shares that part).
	out, err := build.SidecarPart(dnsProxy(), build.PartOutbound)
	if err != nil {
		t.Fatal(err)
	}
	in, err := build.SidecarPart(dnsProxy(), build.PartInbound)
	if err != nil {
		t.Fatal(err)
	}
	if dnsListeners(out) != 1 || dnsListeners(in) != 0 {
		t.Fatalf("DNS listeners: %d in the outbound part, %d in the inbound part", dnsListeners(out), dnsListeners(in))
	}
}

// No DNS port, no VIPs, or only names DNS cannot carry: no DNS listener.
func TestNoDNSListener(t *testing.T) {
	for name, edit := range map[string]func(*proxymodel.Proxy){
		"no port":      func(p *proxymodel.Proxy) { p.DNSPort = 0 },
		"no VIPs":      func(p *proxymodel.Proxy) { p.VIPs = nil },
		"no DNS names": func(p *proxymodel.Proxy) { p.VIPs = p.VIPs[2:3] },
	} {
		t.Run(name, func(t *testing.T) {
			p := dnsProxy()
			edit(p)
			r, err := build.Sidecar(p)
			if err != nil {
				t.Fatal(err)
			}
			if dnsListeners(r) != 0 {
				t.Fatal("a DNS listener was built")
			}
		})
	}
	p := dnsProxy()
	p.DNSPort = 70000
	if _, err := build.Sidecar(p); err == nil {
		t.Fatal("DNS port 70000 accepted")
	}
}
