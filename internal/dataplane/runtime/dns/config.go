// Package dns is trellis-dp's DNS server: the UDP listener with
// Envoy's envoy.filters.udp.dns_filter the control plane sends
// (docs/xds-contract.md, "Mesh DNS"). It listens on the listener's
// address over UDP and TCP, answers A and AAAA queries for the names of
// its inline table (the mesh's services' virtual IPs), answers NXDOMAIN
// for other names under a known suffix (".mesh"), and forwards every other
// query to the resolvers of /etc/resolv.conf.
//
// A new configuration of a listener swaps its table atomically; the
// sockets stay open while the listener's address does not change.
package dns

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	dnsdatav3 "github.com/envoyproxy/go-control-plane/envoy/data/dns/v3"
	dnsfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/udp/dns_filter/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/miekg/dns"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/xdsutil"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// FilterName is the listener filter of a DNS listener.
const FilterName = "envoy.filters.udp.dns_filter"

// Defaults of a DnsFilterConfig, as Envoy's.
const (
	DefaultAnswerTTL         = 300 * time.Second
	DefaultResolverTimeout   = 5 * time.Second
	DefaultMaxPendingLookups = 256
)

// Config is one DNS listener, checked and compiled.
type Config struct {
	Name string
	Addr netip.AddrPort
	// Table answers the local names.
	Table *Table
	// Forward is false when the filter has no client_config: names the
	// table does not know are refused.
	Forward bool
	// ResolverTimeout bounds a forwarded query, over every resolver.
	ResolverTimeout time.Duration
	// MaxPending bounds the forwarded queries in flight.
	MaxPending int
	stats      *filterStats
}

// IsDNSListener reports whether l is for this package: a UDP listener or
// one with the DNS filter. ParseListener then accepts it or says why not.
func IsDNSListener(l *listenerv3.Listener) bool {
	if l.GetAddress().GetSocketAddress().GetProtocol() == corev3.SocketAddress_UDP {
		return true
	}
	for _, lf := range l.GetListenerFilters() {
		if lf.GetName() == FilterName || lf.GetTypedConfig().MessageIs(&dnsfilterv3.DnsFilterConfig{}) {
			return true
		}
	}
	return false
}

// ParseListener checks a DNS listener and compiles its table. reg
// receives the filter's statistics (dns_filter.<stat_prefix>.*). Errors
// name the offending field.
func ParseListener(l *listenerv3.Listener, reg stats.Registry) (*Config, error) {
	sa := l.GetAddress().GetSocketAddress()
	if sa.GetProtocol() != corev3.SocketAddress_UDP {
		return nil, errors.New("address.socket_address.protocol must be UDP for the DNS filter")
	}
	udp := &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: sa.GetAddress(), PortSpecifier: sa.GetPortSpecifier(),
	}}}
	addr, err := xdsutil.SocketAddress(udp)
	if err != nil {
		return nil, fmt.Errorf("address: %w", err)
	}
	if len(l.GetFilterChains()) > 0 {
		return nil, errors.New("filter_chains: a DNS listener has none")
	}
	lfs := l.GetListenerFilters()
	if len(lfs) != 1 {
		return nil, fmt.Errorf("listener_filters: want exactly one, the %s filter", FilterName)
	}
	if n := lfs[0].GetName(); n != "" && n != FilterName {
		return nil, fmt.Errorf("listener_filters[0].name %q: want %s", n, FilterName)
	}
	var fc dnsfilterv3.DnsFilterConfig
	tc := lfs[0].GetTypedConfig()
	if tc == nil || !tc.MessageIs(&fc) {
		return nil, fmt.Errorf("listener_filters[0].typed_config must be a DnsFilterConfig, got %q", tc.GetTypeUrl())
	}
	if err := tc.UnmarshalTo(&fc); err != nil {
		return nil, fmt.Errorf("listener_filters[0].typed_config: %w", err)
	}
	cfg, err := parseFilter(&fc)
	if err != nil {
		return nil, fmt.Errorf("listener_filters[0].typed_config.%w", err)
	}
	cfg.Name, cfg.Addr = l.GetName(), addr
	cfg.stats = newFilterStats(reg, fc.GetStatPrefix())
	return cfg, nil
}

func parseFilter(fc *dnsfilterv3.DnsFilterConfig) (*Config, error) {
	if fc.GetStatPrefix() == "" {
		return nil, errors.New("stat_prefix: required")
	}
	table := fc.GetServerConfig().GetInlineDnsTable()
	if table == nil {
		return nil, errors.New("server_config.inline_dns_table: required")
	}
	t, err := compileTable(table, fc.GetCaseInsensitive())
	if err != nil {
		return nil, fmt.Errorf("server_config.inline_dns_table.%w", err)
	}
	cfg := &Config{Table: t, ResolverTimeout: DefaultResolverTimeout, MaxPending: DefaultMaxPendingLookups}
	if cc := fc.GetClientConfig(); cc != nil {
		cfg.Forward = true
		if cfg.ResolverTimeout, err = xdsutil.Duration(cc.GetResolverTimeout(), DefaultResolverTimeout); err != nil {
			return nil, fmt.Errorf("client_config.resolver_timeout: %w", err)
		}
		if cfg.ResolverTimeout < time.Second {
			return nil, errors.New("client_config.resolver_timeout: must be at least 1s")
		}
		if n := cc.GetMaxPendingLookups(); n != 0 {
			if n > 1<<16 {
				return nil, fmt.Errorf("client_config.max_pending_lookups %d: at most 65536", n)
			}
			cfg.MaxPending = int(n)
		}
	}
	return cfg, nil
}

// compileTable checks the virtual domains and known suffixes.
func compileTable(t *dnsdatav3.DnsTable, caseInsensitive bool) (*Table, error) {
	out := &Table{records: map[string]*record{}, caseInsensitive: caseInsensitive}
	for i, vd := range t.GetVirtualDomains() {
		rec, key, err := compileDomain(vd, caseInsensitive)
		if err != nil {
			return nil, fmt.Errorf("virtual_domains[%d].%w", i, err)
		}
		if _, dup := out.records[key]; dup {
			return nil, fmt.Errorf("virtual_domains[%d].name %q: a name appears twice", i, vd.GetName())
		}
		out.records[key] = rec
	}
	for i, m := range t.GetKnownSuffixes() {
		sm, err := compileMatcher(m)
		if err != nil {
			return nil, fmt.Errorf("known_suffixes[%d].%w", i, err)
		}
		out.suffixes = append(out.suffixes, sm)
	}
	return out, nil
}

func compileDomain(vd *dnsdatav3.DnsTable_DnsVirtualDomain, caseInsensitive bool) (*record, string, error) {
	name := strings.TrimSuffix(vd.GetName(), ".")
	if name == "" {
		return nil, "", errors.New("name: required")
	}
	if _, ok := dns.IsDomainName(name); !ok || len(name) > 253 {
		return nil, "", fmt.Errorf("name %q: not a DNS name", vd.GetName())
	}
	ttl, err := xdsutil.Duration(vd.GetAnswerTtl(), DefaultAnswerTTL)
	if err != nil {
		return nil, "", fmt.Errorf("answer_ttl: %w", err)
	}
	if ttl > 0x7fffffff*time.Second {
		return nil, "", errors.New("answer_ttl: too long")
	}
	rec := &record{ttl: uint32(ttl / time.Second)}
	addrs := vd.GetEndpoint().GetAddressList().GetAddress()
	if len(addrs) == 0 {
		return nil, "", errors.New("endpoint.address_list.address: at least one address is required")
	}
	for j, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil || ip.Zone() != "" {
			return nil, "", fmt.Errorf("endpoint.address_list.address[%d] %q: not an IP address", j, a)
		}
		if ip.Is4() {
			rec.a = append(rec.a, ip)
		} else {
			rec.aaaa = append(rec.aaaa, ip)
		}
	}
	key := dns.Fqdn(name)
	if caseInsensitive {
		key = strings.ToLower(key)
	}
	return rec, key, nil
}

// suffixMatcher is a compiled known_suffixes StringMatcher, matched against
// a query name without its final dot.
type suffixMatcher func(name string) bool

func compileMatcher(m *matcherv3.StringMatcher) (suffixMatcher, error) {
	fold := m.GetIgnoreCase()
	norm := func(s string) string {
		if fold {
			return strings.ToLower(s)
		}
		return s
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		want := norm(p.Exact)
		return func(n string) bool { return norm(n) == want }, nil
	case *matcherv3.StringMatcher_Prefix:
		want := norm(p.Prefix)
		return func(n string) bool { return strings.HasPrefix(norm(n), want) }, nil
	case *matcherv3.StringMatcher_Suffix:
		want := norm(p.Suffix)
		return func(n string) bool { return strings.HasSuffix(norm(n), want) }, nil
	case *matcherv3.StringMatcher_Contains:
		want := norm(p.Contains)
		return func(n string) bool { return strings.Contains(norm(n), want) }, nil
	case *matcherv3.StringMatcher_SafeRegex:
		expr := p.SafeRegex.GetRegex()
		if fold {
			expr = "(?i)" + expr
		}
		re, err := regexp.Compile("^(?:" + expr + ")$")
		if err != nil {
			return nil, fmt.Errorf("safe_regex.regex: %w", err)
		}
		return re.MatchString, nil
	default:
		return nil, errors.New("match_pattern: exact, prefix, suffix, contains or safe_regex is required")
	}
}
