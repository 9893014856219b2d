package dns

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	dnsdatav3 "github.com/envoyproxy/go-control-plane/envoy/data/dns/v3"
	dnsfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/udp/dns_filter/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/miekg/dns"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// Short names of the Envoy types the tests edit.
type (
	dnsdataVD        = dnsdatav3.DnsTable_DnsVirtualDomain
	matcherSafeRegex = matcherv3.StringMatcher_SafeRegex
	regexMatcher     = matcherv3.RegexMatcher
)

// freePort returns a port free on 127.0.0.1 for UDP and TCP.
func freePort(t *testing.T) uint32 {
	t.Helper()
	s, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	port := s.Addr().Port()
	s.udp.Close()
	s.tcp.Close()
	return uint32(port)
}

// apply runs one configuration of listeners through m.
func apply(t *testing.T, m *Manager, reg stats.Registry, ls ...*listenerv3.Listener) error {
	t.Helper()
	all := map[string]*listenerv3.Listener{}
	for _, l := range ls {
		all[l.Name] = l
	}
	p, errs := m.Prepare(all, reg)
	if len(errs) > 0 {
		return errs[0]
	}
	if err := p.Bind(); err != nil {
		return err
	}
	p.Commit()
	return nil
}

// serve starts a manager with one DNS listener forwarding to resolvers.
func serve(t *testing.T, forward bool, resolvers ...string) (netip.AddrPort, *stats.Store) {
	t.Helper()
	m := NewManager(nil, WithResolvConf(resolvConf(t, resolvers...)))
	t.Cleanup(m.Close)
	port := freePort(t)
	reg := stats.NewStore()
	if err := apply(t, m, reg, dnsListener(t, "kuma:dns", port, meshTable, forward)); err != nil {
		t.Fatal(err)
	}
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), reg
}

// The table's names get A and AAAA answers, over UDP and TCP, in any case
// and with the client's case echoed; a name without an IPv6 address gets
// NOERROR and no AAAA; other names under .mesh do not exist.
func TestAnswersFromTheTable(t *testing.T) {
	addr, reg := serve(t, false)
	for _, network := range []string{"udp", "tcp"} {
		for _, tc := range []struct {
			name  string
			qtype uint16
			rcode int
			want  []string
		}{
			{"backend.mesh.", dns.TypeA, dns.RcodeSuccess, []string{"240.0.0.2"}},
			{"backend.mesh.", dns.TypeAAAA, dns.RcodeSuccess, []string{"fd00:fd00::f000:2"}},
			{"BackEnd.MESH.", dns.TypeA, dns.RcodeSuccess, []string{"240.0.0.2"}},
			{"redis.mesh.", dns.TypeA, dns.RcodeSuccess, []string{"240.0.0.3"}},
			{"redis.mesh.", dns.TypeAAAA, dns.RcodeSuccess, nil},
			{"redis.mesh.", dns.TypeTXT, dns.RcodeSuccess, nil},
			{"nope.mesh.", dns.TypeA, dns.RcodeNameError, nil},
			{"NOPE.Mesh.", dns.TypeAAAA, dns.RcodeNameError, nil},
		} {
			resp := query(t, network, addr, tc.name, tc.qtype, network == "udp")
			if resp.Rcode != tc.rcode || !slices.Equal(answers(resp), tc.want) || !resp.Authoritative {
				t.Errorf("%s %s %s: rcode %s, answers %v, aa %v; want %s, %v, aa",
					network, tc.name, dns.TypeToString[tc.qtype], dns.RcodeToString[resp.Rcode], answers(resp), resp.Authoritative,
					dns.RcodeToString[tc.rcode], tc.want)
			}
			if resp.Question[0].Name != tc.name {
				t.Errorf("question %q, asked %q", resp.Question[0].Name, tc.name)
			}
			for _, rr := range resp.Answer {
				if rr.Header().Ttl != 30 || rr.Header().Name != tc.name {
					t.Errorf("answer %v: want TTL 30 and the asked name", rr)
				}
			}
		}
	}
	// Without client_config, names the table does not know are refused.
	if resp := query(t, "udp", addr, "example.com.", dns.TypeA, false); resp.Rcode != dns.RcodeRefused {
		t.Errorf("example.com without forwarding: %s, want REFUSED", dns.RcodeToString[resp.Rcode])
	}
	if n := reg.Snapshot()["dns_filter.kuma_dns.local_a_record_answers"]; n < 6 {
		t.Errorf("local_a_record_answers = %d", n)
	}
}

// Other names go to the resolvers of resolv.conf: answers and NXDOMAIN are
// relayed; a reply too large for UDP is relayed truncated and the client's
// TCP retry is forwarded over TCP; an unreachable or silent resolver gives
// SERVFAIL within the resolver timeout; a changed resolv.conf is read.
func TestForwardsToTheResolvers(t *testing.T) {
	up := startResolver(t)
	addr, reg := serve(t, true, "192.0.2.99:53", up.addr.String()) // the first never answers
	if resp := query(t, "udp", addr, "example.com.", dns.TypeA, false); !slices.Equal(answers(resp), []string{"192.0.2.1"}) {
		t.Fatalf("example.com: %v", resp)
	}
	if resp := query(t, "tcp", addr, "example.com.", dns.TypeA, false); !slices.Equal(answers(resp), []string{"192.0.2.1"}) {
		t.Fatalf("example.com over TCP: %v", resp)
	}
	if resp := query(t, "udp", addr, "nothing.example.com.", dns.TypeA, false); resp.Rcode != dns.RcodeNameError {
		t.Fatalf("nothing.example.com: %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}
	resp := query(t, "udp", addr, "big.example.com.", dns.TypeTXT, false)
	if !resp.Truncated {
		t.Fatalf("big.example.com over UDP: not truncated (%d answers)", len(resp.Answer))
	}
	resp = query(t, "tcp", addr, "big.example.com.", dns.TypeTXT, false)
	if resp.Truncated || len(resp.Answer) != 20 {
		t.Fatalf("big.example.com over TCP: truncated %v, %d answers", resp.Truncated, len(resp.Answer))
	}
	select {
	case name := <-up.tcpQueries:
		if name != "big.example.com." && name != "example.com." {
			t.Fatalf("the resolver got %q over TCP", name)
		}
	default:
		t.Fatal("the resolver got no TCP query")
	}
	start := time.Now()
	if resp := query(t, "udp", addr, "slow.example.com.", dns.TypeA, false); resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("slow.example.com: %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("SERVFAIL took %s with a 2s resolver timeout", took)
	}
	if n := reg.Snapshot()["dns_filter.kuma_dns.unanswered_queries"]; n == 0 {
		t.Error("unanswered_queries = 0")
	}
}

func TestResolvConfChanges(t *testing.T) {
	up := startResolver(t)
	path := resolvConf(t) // no nameserver yet
	m := NewManager(nil, WithResolvConf(path))
	t.Cleanup(m.Close)
	port := freePort(t)
	if err := apply(t, m, nil, dnsListener(t, "kuma:dns", port, meshTable, true)); err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	if resp := query(t, "udp", addr, "example.com.", dns.TypeA, false); resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("without resolvers: %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	// Its own address is never an upstream (that would loop).
	conf := fmt.Sprintf("nameserver %s\nnameserver %s\n", addr, up.addr)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second)
	os.Chtimes(path, later, later)
	if resp := query(t, "udp", addr, "example.com.", dns.TypeA, false); !slices.Equal(answers(resp), []string{"192.0.2.1"}) {
		t.Fatalf("after resolv.conf changed: %v", resp)
	}
}

// Garbage gets no reply or FORMERR, never a crash; the server answers on.
func TestMalformedPackets(t *testing.T) {
	addr, reg := serve(t, false)
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	read := func() []byte {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		if err != nil {
			return nil
		}
		return buf[:n]
	}
	for _, junk := range [][]byte{{1, 2, 3}, {}, make([]byte, 11)} {
		c.Write(junk)
		if got := read(); got != nil {
			t.Errorf("%x got a reply %x", junk, got)
		}
	}
	// A header that claims records it does not carry: FORMERR, same ID.
	bad := []byte{0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7, 'b'}
	c.Write(bad)
	got := read()
	var m dns.Msg
	if got == nil || m.Unpack(got) != nil || m.Id != 0xabcd || m.Rcode != dns.RcodeFormatError || !m.Response {
		t.Errorf("truncated question: reply %x, want FORMERR for ID abcd", got)
	}
	// A response is not answered (no loops between servers).
	resp := new(dns.Msg)
	resp.SetQuestion("backend.mesh.", dns.TypeA)
	resp.Response = true
	packed, _ := resp.Pack()
	c.Write(packed)
	if got := read(); got != nil {
		t.Errorf("a response got a reply")
	}
	// Two questions: FORMERR.
	two := new(dns.Msg)
	two.SetQuestion("backend.mesh.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	packed, _ = two.Pack()
	c.Write(packed)
	if got := read(); got == nil || m.Unpack(got) != nil || m.Rcode != dns.RcodeFormatError {
		t.Errorf("two questions: %x, want FORMERR", got)
	}
	// Over TCP, garbage closes the connection.
	tc, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	tc.Write([]byte{0, 3, 1, 2, 3})
	_ = tc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := tc.Read(make([]byte, 10)); err == nil {
		t.Errorf("TCP garbage: read %d bytes, want the connection closed", n)
	}
	tc.Close()
	if resp := query(t, "udp", addr, "backend.mesh.", dns.TypeA, false); !slices.Equal(answers(resp), []string{"240.0.0.2"}) {
		t.Fatalf("after the garbage: %v", resp)
	}
	if reg.Snapshot()["dns_filter.kuma_dns.downstream_rx_invalid_queries"] == 0 {
		t.Error("downstream_rx_invalid_queries = 0")
	}
}

// A new table swaps in on the same socket; a removed listener closes.
func TestUpdatesKeepTheSocket(t *testing.T) {
	m := NewManager(nil, WithResolvConf(resolvConf(t)))
	t.Cleanup(m.Close)
	port := freePort(t)
	if err := apply(t, m, nil, dnsListener(t, "kuma:dns", port, meshTable, false)); err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	before := m.servers[addr]
	if err := apply(t, m, nil, dnsListener(t, "kuma:dns", port, map[string][]string{"backend.mesh": {"240.0.0.9"}}, false)); err != nil {
		t.Fatal(err)
	}
	if m.servers[addr] != before {
		t.Fatal("the update replaced the server")
	}
	if resp := query(t, "udp", addr, "backend.mesh.", dns.TypeA, false); !slices.Equal(answers(resp), []string{"240.0.0.9"}) {
		t.Fatalf("after the update: %v", answers(resp))
	}
	if resp := query(t, "tcp", addr, "redis.mesh.", dns.TypeA, false); resp.Rcode != dns.RcodeNameError {
		t.Fatalf("redis.mesh after the update: %s", dns.RcodeToString[resp.Rcode])
	}
	// A configuration that fails to bind changes nothing.
	busy, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	bad := dnsListener(t, "other", uint32(busy.LocalAddr().(*net.UDPAddr).Port), meshTable, false)
	if err := apply(t, m, nil, dnsListener(t, "kuma:dns", port, meshTable, false), bad); err == nil {
		t.Fatal("binding a busy port succeeded")
	}
	if resp := query(t, "udp", addr, "backend.mesh.", dns.TypeA, false); !slices.Equal(answers(resp), []string{"240.0.0.9"}) {
		t.Fatalf("after a failed update: %v", answers(resp))
	}
	if err := apply(t, m, nil); err != nil {
		t.Fatal(err)
	}
	if len(m.Addrs()) != 0 {
		t.Fatalf("listeners left: %v", m.Addrs())
	}
	c := &dns.Client{Net: "tcp", Timeout: time.Second}
	q := new(dns.Msg)
	q.SetQuestion("backend.mesh.", dns.TypeA)
	if _, _, err := c.Exchange(q, addr.String()); err == nil {
		t.Fatal("the removed listener still answers over TCP")
	}
}

// Listeners the DNS server cannot serve are refused with the field named.
func TestParseErrors(t *testing.T) {
	edit := func(f func(l *listenerv3.Listener, fc *dnsfilterv3.DnsFilterConfig)) *listenerv3.Listener {
		l := dnsListener(t, "kuma:dns", 15053, map[string][]string{"backend.mesh": {"240.0.0.2"}}, true)
		var fc dnsfilterv3.DnsFilterConfig
		if err := l.ListenerFilters[0].GetTypedConfig().UnmarshalTo(&fc); err != nil {
			t.Fatal(err)
		}
		f(l, &fc)
		a, _ := anypb.New(&fc)
		l.ListenerFilters[0].ConfigType = &listenerv3.ListenerFilter_TypedConfig{TypedConfig: a}
		return l
	}
	vd := func(fc *dnsfilterv3.DnsFilterConfig) *dnsdataVD {
		return fc.ServerConfig.GetInlineDnsTable().VirtualDomains[0]
	}
	for want, l := range map[string]*listenerv3.Listener{
		"protocol must be UDP": edit(func(l *listenerv3.Listener, _ *dnsfilterv3.DnsFilterConfig) {
			l.Address.GetSocketAddress().Protocol = corev3.SocketAddress_TCP
		}),
		"filter_chains": edit(func(l *listenerv3.Listener, _ *dnsfilterv3.DnsFilterConfig) {
			l.FilterChains = []*listenerv3.FilterChain{{}}
		}),
		"port_value 0": edit(func(l *listenerv3.Listener, _ *dnsfilterv3.DnsFilterConfig) {
			l.Address.GetSocketAddress().PortSpecifier = &corev3.SocketAddress_PortValue{}
		}),
		"stat_prefix":                edit(func(_ *listenerv3.Listener, fc *dnsfilterv3.DnsFilterConfig) { fc.StatPrefix = "" }),
		"inline_dns_table: required": edit(func(_ *listenerv3.Listener, fc *dnsfilterv3.DnsFilterConfig) { fc.ServerConfig = nil }),
		"virtual_domains[0].endpoint.address_list.address[0]": edit(func(_ *listenerv3.Listener, fc *dnsfilterv3.DnsFilterConfig) {
			vd(fc).GetEndpoint().GetAddressList().Address = []string{"not-an-ip"}
		}),
		"virtual_domains[0].name": edit(func(_ *listenerv3.Listener, fc *dnsfilterv3.DnsFilterConfig) {
			vd(fc).Name = strings.Repeat("a", 70) + ".mesh"
		}),
		"appears twice": edit(func(_ *listenerv3.Listener, fc *dnsfilterv3.DnsFilterConfig) {
			t := fc.ServerConfig.GetInlineDnsTable()
			dup := proto.Clone(t.VirtualDomains[0]).(*dnsdataVD)
			dup.Name = "BACKEND.mesh"
			t.VirtualDomains = append(t.VirtualDomains, dup)
		}),
		"resolver_timeout": edit(func(_ *listenerv3.Listener, fc *dnsfilterv3.DnsFilterConfig) {
			fc.ClientConfig.ResolverTimeout = durationpb.New(100 * time.Millisecond)
		}),
		"known_suffixes[0].safe_regex": edit(func(_ *listenerv3.Listener, fc *dnsfilterv3.DnsFilterConfig) {
			fc.ServerConfig.GetInlineDnsTable().KnownSuffixes[0].MatchPattern = &matcherSafeRegex{SafeRegex: &regexMatcher{Regex: "("}}
		}),
	} {
		if !IsDNSListener(l) {
			t.Errorf("%s: not taken for a DNS listener", want)
			continue
		}
		_, err := ParseListener(l, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want one naming %q", err, want)
		}
	}
}

// editFilter changes the DnsFilterConfig of a listener.
func editFilter(t *testing.T, l *listenerv3.Listener, f func(*dnsfilterv3.DnsFilterConfig)) *listenerv3.Listener {
	t.Helper()
	var fc dnsfilterv3.DnsFilterConfig
	if err := l.ListenerFilters[0].GetTypedConfig().UnmarshalTo(&fc); err != nil {
		t.Fatal(err)
	}
	f(&fc)
	a, err := anypb.New(&fc)
	if err != nil {
		t.Fatal(err)
	}
	l.ListenerFilters[0].ConfigType = &listenerv3.ListenerFilter_TypedConfig{TypedConfig: a}
	return l
}

// Forwarded queries beyond max_pending_lookups get SERVFAIL at once,
// while local names are still answered.
func TestPendingLookupsAreBounded(t *testing.T) {
	m := NewManager(nil, WithResolvConf(resolvConf(t, "192.0.2.99:53"))) // never answers
	t.Cleanup(m.Close)
	port := freePort(t)
	reg := stats.NewStore()
	l := editFilter(t, dnsListener(t, "kuma:dns", port, meshTable, true), func(fc *dnsfilterv3.DnsFilterConfig) {
		fc.ClientConfig.MaxPendingLookups = 1
	})
	if err := apply(t, m, reg, l); err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	done := make(chan int, 3)
	for i := range 3 {
		go func() {
			c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
			q := new(dns.Msg)
			q.SetQuestion(fmt.Sprintf("q%d.example.com.", i), dns.TypeA)
			resp, _, err := c.Exchange(q, addr.String())
			if err != nil {
				done <- -1
				return
			}
			done <- resp.Rcode
		}()
	}
	time.Sleep(200 * time.Millisecond) // the three are in; at most one is pending
	if resp := query(t, "udp", addr, "backend.mesh.", dns.TypeA, false); !slices.Equal(answers(resp), []string{"240.0.0.2"}) {
		t.Fatalf("backend.mesh while lookups are pending: %v", answers(resp))
	}
	for range 3 {
		if rcode := <-done; rcode != dns.RcodeServerFailure {
			t.Errorf("rcode %d, want SERVFAIL", rcode)
		}
	}
	if n := reg.Snapshot()["dns_filter.kuma_dns.pending_lookups_overflow"]; n < 2 {
		t.Errorf("pending_lookups_overflow = %d, want 2", n)
	}
}
