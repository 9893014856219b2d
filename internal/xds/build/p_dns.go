package build

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	dnsdatav3 "github.com/envoyproxy/go-control-plane/envoy/data/dns/v3"
	dnsfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/udp/dns_filter/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// The DNS listener (docs/xds-contract.md, "Mesh DNS"), as Kuma names and
// configures it.
const (
	// DNSListenerName is the name of the proxy's DNS listener.
	DNSListenerName = "kuma:dns"
	// DNSFilterName is the UDP listener filter that answers DNS queries.
	DNSFilterName = "envoy.filters.udp.dns_filter"
	// dnsStatPrefix prefixes the DNS filter's statistics.
	dnsStatPrefix = "kuma_dns"
	// dnsAnswerTTL is the TTL of the mesh names' answers (Kuma's 30 s).
	dnsAnswerTTL = 30 * time.Second
	// dnsResolverTimeout bounds a forwarded query.
	dnsResolverTimeout = 5 * time.Second
	// dnsMaxPendingLookups bounds the forwarded queries in flight.
	dnsMaxPendingLookups = 256
)

// The DNS listener belongs to the outbound part: what it serves (the
// proxy's VIPs and its DNS port) is hashed with the outbounds by the
// control plane's sharing (internal/xds/server/share.go hashes the whole
// outbound model).
func init() {
	register(Plugin{
		Name:          "DNS",
		Order:         1010,
		ProxyOutbound: dnsListener,
	})
}

// dnsListener adds the DNS listener of a proxy that runs a DNS server
// (Proxy.DNSPort, from its node metadata) and has VIPs: a UDP listener on
// 127.0.0.1:DNSPort whose dns_filter answers the VIPs' names (A and AAAA,
// case-insensitively), answers NXDOMAIN for other names under the mesh
// domain (known_suffixes) and forwards every other query to the host's
// resolvers (client_config without resolvers: the system's).
func dnsListener(p *proxymodel.Proxy, r *Resources) error {
	if p.DNSPort == 0 || len(p.VIPs) == 0 {
		return nil
	}
	if p.DNSPort > 0xffff {
		return fmt.Errorf("DNS port %d is out of range 1-65535", p.DNSPort)
	}
	var domains []*dnsdatav3.DnsTable_DnsVirtualDomain
	var suffixes []string
	seen := map[string]bool{}
	for _, v := range p.VIPs {
		var addrs []string
		for _, a := range []string{v.IPv4, v.IPv6} {
			if a != "" {
				addrs = append(addrs, a)
			}
		}
		if suffix, ok := strings.CutPrefix(v.Name, v.Service+"."); ok && !slices.Contains(suffixes, "."+suffix) {
			suffixes = append(suffixes, "."+suffix)
		}
		for _, name := range dnsNames(v.Name) {
			key := strings.ToLower(name)
			if len(addrs) == 0 || seen[key] || !validDNSName(name) {
				continue
			}
			seen[key] = true
			domains = append(domains, &dnsdatav3.DnsTable_DnsVirtualDomain{
				Name: name,
				Endpoint: &dnsdatav3.DnsTable_DnsEndpoint{EndpointConfig: &dnsdatav3.DnsTable_DnsEndpoint_AddressList{
					AddressList: &dnsdatav3.DnsTable_AddressList{Address: addrs},
				}},
				AnswerTtl: durationpb.New(dnsAnswerTTL),
			})
		}
	}
	if len(domains) == 0 {
		return nil
	}
	slices.SortFunc(domains, func(a, b *dnsdatav3.DnsTable_DnsVirtualDomain) int { return strings.Compare(a.Name, b.Name) })
	slices.Sort(suffixes)
	var known []*matcherv3.StringMatcher
	for _, s := range suffixes {
		known = append(known, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: s}, IgnoreCase: true})
	}
	cfg, err := anyOf(&dnsfilterv3.DnsFilterConfig{
		StatPrefix:      dnsStatPrefix,
		CaseInsensitive: true,
		ServerConfig: &dnsfilterv3.DnsFilterConfig_ServerContextConfig{
			ConfigSource: &dnsfilterv3.DnsFilterConfig_ServerContextConfig_InlineDnsTable{InlineDnsTable: &dnsdatav3.DnsTable{
				VirtualDomains: domains,
				KnownSuffixes:  known,
			}},
		},
		ClientConfig: &dnsfilterv3.DnsFilterConfig_ClientContextConfig{
			ResolverTimeout:   durationpb.New(dnsResolverTimeout),
			MaxPendingLookups: dnsMaxPendingLookups,
		},
	})
	if err != nil {
		return err
	}
	addr := socketAddress("127.0.0.1", p.DNSPort)
	addr.GetSocketAddress().Protocol = corev3.SocketAddress_UDP
	r.Listeners = append(r.Listeners, &listenerv3.Listener{
		Name:             DNSListenerName,
		Address:          addr,
		TrafficDirection: corev3.TrafficDirection_INBOUND,
		ListenerFilters: []*listenerv3.ListenerFilter{{
			Name:       DNSFilterName,
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: cfg},
		}},
	})
	return nil
}

// dnsNames are the names a VIP answers for, as Kuma serves them: its name
// and, for a service with "_" (Kubernetes' name_namespace_svc_port), the
// name with "." for "_".
func dnsNames(name string) []string {
	if !strings.Contains(name, "_") {
		return []string{name}
	}
	return []string{name, strings.ReplaceAll(name, "_", ".")}
}

// validDNSName reports whether name can be asked for in DNS: labels of 1
// to 63 letters, digits, hyphens and underscores, 253 characters at most.
// Services whose names are not keep their VIP but get no DNS name.
func validDNSName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
