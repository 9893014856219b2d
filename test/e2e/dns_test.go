package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsAsk queries the sidecar's DNS server at addr over UDP.
func dnsAsk(addr, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	resp, _, err := c.Exchange(m, addr)
	return resp, err
}

// dnsAnswer returns the single address a name resolves to.
func dnsAnswer(addr, name string, qtype uint16) (string, error) {
	resp, err := dnsAsk(addr, name, qtype)
	if err != nil {
		return "", err
	}
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		return "", fmt.Errorf("%s: %s with %d answers", name, dns.RcodeToString[resp.Rcode], len(resp.Answer))
	}
	switch rr := resp.Answer[0].(type) {
	case *dns.A:
		return rr.A.String(), nil
	case *dns.AAAA:
		return rr.AAAA.String(), nil
	}
	return "", fmt.Errorf("%s: answer %v", name, resp.Answer[0])
}

// A trellis-dp whose Dataplane uses transparent proxying announces its DNS
// port, gets the DNS listener from the control plane and answers
// backend.mesh with the VIP the control plane allocated (an IPv4 proxy:
// A, and AAAA without answers); unknown mesh names do not exist. After a control-plane restart, a new
// service gets a name and backend keeps its VIP (the allocations are in
// the store).
func TestDNSAnswersMeshNames(t *testing.T) {
	cp := startCP(t, nil) // SQLite in the data dir: the VIPs survive the restart
	cp.mustCtl(serviceDP(t, "backend-1", "backend", "http", freePort(t)), "apply", "-f", "-")
	dnsPort := freePort(t)
	frontend := fmt.Sprintf(`type: Dataplane
mesh: default
name: web-1
networking:
  address: 127.0.0.1
  inbound:
  - port: %d
    servicePort: %d
    tags:
      kuma.io/service: web
  transparentProxying:
    ipFamilyMode: IPv4
    redirectPortInbound: %d
    redirectPortOutbound: %d
`, freePort(t), freePort(t), freePort(t), freePort(t))
	p := startDP(t, cp, "web-1", frontend, "--dns-port", fmt.Sprint(dnsPort))
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(dnsPort))

	var backend string
	eventually(t, 15*time.Second, "backend.mesh to resolve", func() error {
		var err error
		backend, err = dnsAnswer(addr, "backend.mesh.", dns.TypeA)
		return err
	})
	ip := netip.MustParseAddr(backend)
	if !netip.MustParsePrefix("240.0.0.0/4").Contains(ip) {
		t.Fatalf("backend.mesh → %s, want a VIP in 240.0.0.0/4", backend)
	}
	// An IPv4 proxy gets no IPv6 VIPs: AAAA has no answer, and the name
	// exists (NOERROR). Names are case-insensitive.
	if resp, err := dnsAsk(addr, "BACKEND.mesh.", dns.TypeAAAA); err != nil || resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 {
		t.Fatalf("backend.mesh AAAA: %v %v, want NOERROR without answers", resp, err)
	}
	if resp, err := dnsAsk(addr, "nope.mesh.", dns.TypeA); err != nil || resp.Rcode != dns.RcodeNameError {
		t.Fatalf("nope.mesh: %v %v, want NXDOMAIN", resp, err)
	}
	// The proxy's own service has a name too.
	if web, err := dnsAnswer(addr, "web.mesh.", dns.TypeA); err != nil || web == backend {
		t.Fatalf("web.mesh → %s, %v", web, err)
	}

	cp.Restart()
	cp.mustCtl(serviceDP(t, "redis-1", "redis", "tcp", freePort(t)), "apply", "-f", "-")
	eventually(t, 20*time.Second, "redis.mesh to resolve after the restart", func() error {
		_, err := dnsAnswer(addr, "redis.mesh.", dns.TypeA)
		return err
	})
	if again, err := dnsAnswer(addr, "backend.mesh.", dns.TypeA); err != nil || again != backend {
		t.Fatalf("backend.mesh → %s (%v) after the restart, was %s", again, err, backend)
	}
	_ = p
}
