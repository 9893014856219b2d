package allowlist

import (
	originaldstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
)

// Transparent proxying (docs/xds-contract.md, "Transparent proxy"): the
// original_dst listener filter, filter chains matched by destination
// port and prefix ranges, the default filter chain, ORIGINAL_DST clusters
// (cluster type and lb_policy CLUSTER_PROVIDED are enum values of fields
// already allowed; the runtime checks them) and the upstream source
// address of the inbound passthrough (upstream_bind_config).
func init() {
	allow(
		"envoy.config.listener.v3.Listener.default_filter_chain",
		"envoy.config.listener.v3.FilterChainMatch.destination_port",
		"envoy.config.listener.v3.FilterChainMatch.prefix_ranges",
		"envoy.config.core.v3.CidrRange.address_prefix",
		"envoy.config.core.v3.CidrRange.prefix_len",
		"envoy.config.cluster.v3.Cluster.upstream_bind_config",
		"envoy.config.core.v3.BindConfig.source_address",
		"envoy.config.core.v3.BindConfig.freebind",
	)
	allowType(&originaldstv3.OriginalDst{})
}
