package allowlist

import (
	dnsfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/udp/dns_filter/v3"
)

// Mesh DNS: the UDP listener "kuma:dns" whose dns_filter answers the
// mesh's names and forwards the rest (internal/dataplane/runtime/dns). A
// socket address's protocol is only accepted as UDP on that listener; the
// TCP listeners and cluster endpoints refuse it.
func init() {
	allow(
		"envoy.config.core.v3.SocketAddress.protocol",

		"envoy.extensions.filters.udp.dns_filter.v3.DnsFilterConfig.stat_prefix",
		"envoy.extensions.filters.udp.dns_filter.v3.DnsFilterConfig.case_insensitive",
		"envoy.extensions.filters.udp.dns_filter.v3.DnsFilterConfig.server_config",
		"envoy.extensions.filters.udp.dns_filter.v3.DnsFilterConfig.client_config",
		"envoy.extensions.filters.udp.dns_filter.v3.DnsFilterConfig.ServerContextConfig.inline_dns_table",
		"envoy.extensions.filters.udp.dns_filter.v3.DnsFilterConfig.ClientContextConfig.resolver_timeout",
		"envoy.extensions.filters.udp.dns_filter.v3.DnsFilterConfig.ClientContextConfig.max_pending_lookups",

		"envoy.data.dns.v3.DnsTable.virtual_domains",
		"envoy.data.dns.v3.DnsTable.known_suffixes",
		"envoy.data.dns.v3.DnsTable.DnsVirtualDomain.name",
		"envoy.data.dns.v3.DnsTable.DnsVirtualDomain.endpoint",
		"envoy.data.dns.v3.DnsTable.DnsVirtualDomain.answer_ttl",
		"envoy.data.dns.v3.DnsTable.DnsEndpoint.address_list",
		"envoy.data.dns.v3.DnsTable.AddressList.address",
	)
	allowType(&dnsfilterv3.DnsFilterConfig{})
}
