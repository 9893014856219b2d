package dns

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	dnsdatav3 "github.com/envoyproxy/go-control-plane/envoy/data/dns/v3"
	dnsfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/udp/dns_filter/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/miekg/dns"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// meshTable is the table the tests serve: name → addresses.
var meshTable = map[string][]string{
	"backend.mesh": {"240.0.0.2", "fd00:fd00::f000:2"},
	"redis.mesh":   {"240.0.0.3"},
}

// dnsListener builds a DNS listener as the control plane does
// (internal/xds/build/p_dns.go).
func dnsListener(t testing.TB, name string, port uint32, table map[string][]string, forward bool) *listenerv3.Listener {
	t.Helper()
	var domains []*dnsdatav3.DnsTable_DnsVirtualDomain
	for n, addrs := range table {
		domains = append(domains, &dnsdatav3.DnsTable_DnsVirtualDomain{
			Name: n,
			Endpoint: &dnsdatav3.DnsTable_DnsEndpoint{EndpointConfig: &dnsdatav3.DnsTable_DnsEndpoint_AddressList{
				AddressList: &dnsdatav3.DnsTable_AddressList{Address: addrs},
			}},
			AnswerTtl: durationpb.New(30 * time.Second),
		})
	}
	fc := &dnsfilterv3.DnsFilterConfig{
		StatPrefix:      "kuma_dns",
		CaseInsensitive: true,
		ServerConfig: &dnsfilterv3.DnsFilterConfig_ServerContextConfig{
			ConfigSource: &dnsfilterv3.DnsFilterConfig_ServerContextConfig_InlineDnsTable{InlineDnsTable: &dnsdatav3.DnsTable{
				VirtualDomains: domains,
				KnownSuffixes:  []*matcherv3.StringMatcher{{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: ".mesh"}, IgnoreCase: true}},
			}},
		},
	}
	if forward {
		fc.ClientConfig = &dnsfilterv3.DnsFilterConfig_ClientContextConfig{ResolverTimeout: durationpb.New(2 * time.Second), MaxPendingLookups: 16}
	}
	a, err := anypb.New(fc)
	if err != nil {
		t.Fatal(err)
	}
	return &listenerv3.Listener{
		Name: name,
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}, Protocol: corev3.SocketAddress_UDP,
		}}},
		TrafficDirection: corev3.TrafficDirection_INBOUND,
		ListenerFilters:  []*listenerv3.ListenerFilter{{Name: FilterName, ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: a}}},
	}
}

// fakeResolver is an upstream resolver on 127.0.0.1 (UDP and TCP, one
// port): example.com. A 192.0.2.1; big.example.com. has TXT records too
// large for 512 bytes; slow.example.com. never answers; other names
// NXDOMAIN.
type fakeResolver struct {
	addr netip.AddrPort
	// tcpQueries counts the queries it got over TCP.
	tcpQueries chan string
}

func startResolver(t *testing.T) *fakeResolver {
	t.Helper()
	f := &fakeResolver{tcpQueries: make(chan string, 100)}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		q := req.Question[0]
		if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
			f.tcpQueries <- q.Name
		}
		resp := new(dns.Msg)
		resp.SetReply(req)
		switch strings.ToLower(q.Name) {
		case "example.com.":
			if q.Qtype == dns.TypeA {
				resp.Answer = append(resp.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("192.0.2.1")})
			}
		case "big.example.com.":
			for i := range 20 {
				resp.Answer = append(resp.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
					Txt: []string{fmt.Sprintf("%02d-%s", i, strings.Repeat("x", 60))}})
			}
		case "slow.example.com.":
			return
		default:
			resp.Rcode = dns.RcodeNameError
		}
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			resp.Truncate(512)
		}
		_ = w.WriteMsg(resp)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		pc.Close()
		t.Skipf("the fake resolver's TCP port %d is busy", port)
	}
	udpSrv := &dns.Server{PacketConn: pc, Handler: handler}
	tcpSrv := &dns.Server{Listener: ln, Handler: handler}
	go udpSrv.ActivateAndServe()
	go tcpSrv.ActivateAndServe()
	t.Cleanup(func() { udpSrv.Shutdown(); tcpSrv.Shutdown() })
	f.addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	return f
}

// resolvConf writes a resolv.conf naming the servers (address:port, the
// extension the DNS server reads) and returns its path.
func resolvConf(t *testing.T, servers ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# test\nsearch example.org\noptions ndots:1\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// query asks addr over network ("udp" or "tcp") and returns the reply.
func query(t *testing.T, network string, addr netip.AddrPort, name string, qtype uint16, edns bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(4096, false)
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(m, addr.String())
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, name, dns.TypeToString[qtype], err)
	}
	if resp.Id != m.Id {
		t.Fatalf("reply ID %d, query ID %d", resp.Id, m.Id)
	}
	return resp
}

func answers(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch r := rr.(type) {
		case *dns.A:
			out = append(out, r.A.String())
		case *dns.AAAA:
			out = append(out, r.AAAA.String())
		default:
			out = append(out, dns.TypeToString[rr.Header().Rrtype])
		}
	}
	return out
}
