package runtime_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/miekg/dns"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// dnsListenerFor builds the DNS listener the control plane sends a proxy
// with these VIPs and DNS port.
func dnsListenerFor(t *testing.T, port uint32, vips ...proxymodel.VIP) *listenerv3.Listener {
	t.Helper()
	r, err := build.Sidecar(&proxymodel.Proxy{Mesh: "default", Name: "web-1", DNSPort: port, VIPs: vips})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range r.Listeners {
		if l.GetName() == build.DNSListenerName {
			return l
		}
	}
	t.Fatal("no DNS listener")
	return nil
}

func ask(t *testing.T, network, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	resp, _, err := (&dns.Client{Net: network, Timeout: 5 * time.Second}).Exchange(q, addr)
	if err != nil {
		t.Fatalf("%s %s: %v", network, name, err)
	}
	return resp
}

func firstAnswer(m *dns.Msg) string {
	if len(m.Answer) == 0 {
		return dns.RcodeToString[m.Rcode]
	}
	switch rr := m.Answer[0].(type) {
	case *dns.A:
		return rr.A.String()
	case *dns.AAAA:
		return rr.AAAA.String()
	}
	return m.Answer[0].String()
}

// The DNS listener trellis-cp builds runs beside the TCP listeners: it
// answers the VIPs' names over UDP and TCP, a new table applies on the
// same port, and a configuration without it closes it.
func TestDNSListenerFromTheBuilder(t *testing.T) {
	rt := newRuntime(t)
	port := netip.MustParseAddrPort(freeAddr(t)).Port()
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String()
	backend := proxymodel.VIP{Service: "backend", Name: "backend.mesh", IPv4: "240.0.0.2", IPv6: "fd00:fd00::f000:2"}
	tcp := tcpListener(t, freeAddr(t), "backend")
	apply(t, rt, configOf(dnsListenerFor(t, uint32(port), backend), tcp, edsCluster(t, "backend", false), cla("backend")))
	if got := firstAnswer(ask(t, "udp", addr, "backend.mesh.", dns.TypeA)); got != "240.0.0.2" {
		t.Fatalf("backend.mesh A = %s", got)
	}
	if got := firstAnswer(ask(t, "tcp", addr, "backend.mesh.", dns.TypeAAAA)); got != "fd00:fd00::f000:2" {
		t.Fatalf("backend.mesh AAAA = %s", got)
	}
	if got := firstAnswer(ask(t, "udp", addr, "web.mesh.", dns.TypeA)); got != "NXDOMAIN" {
		t.Fatalf("web.mesh = %s, want NXDOMAIN", got)
	}
	if n := rt.Stats()["dns_filter.kuma_dns.local_a_record_answers"]; n != 1 {
		t.Errorf("local_a_record_answers = %d", n)
	}

	web := proxymodel.VIP{Service: "web", Name: "web.mesh", IPv4: "240.0.0.3"}
	apply(t, rt, configOf(dnsListenerFor(t, uint32(port), backend, web), tcp, edsCluster(t, "backend", false), cla("backend")))
	if got := firstAnswer(ask(t, "udp", addr, "web.mesh.", dns.TypeA)); got != "240.0.0.3" {
		t.Fatalf("web.mesh after the update = %s", got)
	}

	apply(t, rt, configOf(tcp, edsCluster(t, "backend", false), cla("backend")))
	q := new(dns.Msg)
	q.SetQuestion("backend.mesh.", dns.TypeA)
	if _, _, err := (&dns.Client{Net: "tcp", Timeout: time.Second}).Exchange(q, addr); err == nil {
		t.Fatal("the removed DNS listener still answers")
	}
}

// A UDP listener is a DNS listener or nothing: without the dns_filter it
// is refused, naming the listener and the filter.
func TestUDPListenerWithoutDNSFilterIsRefused(t *testing.T) {
	rt := newRuntime(t)
	l := tcpListener(t, freeAddr(t), "backend")
	l.Address.GetSocketAddress().Protocol = corev3.SocketAddress_UDP
	err := rt.Apply(context.Background(), configOf(l, edsCluster(t, "backend", false), cla("backend")))
	if err == nil || !strings.Contains(err.Error(), l.Name) || !strings.Contains(err.Error(), "filter_chains") {
		t.Fatalf("Apply = %v, want an error naming %s and its filter_chains", err, l.Name)
	}
	if len(rt.ListenerAddrs()) != 0 {
		t.Fatalf("listeners %v after a refused config", rt.ListenerAddrs())
	}
}
