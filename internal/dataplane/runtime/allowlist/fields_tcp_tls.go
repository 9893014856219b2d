package allowlist

import (
	netlocalratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/local_ratelimit/v3"
)

// TCP and TLS features of the traffic policies: tcp_proxy idle timeout
// and connect attempts (MeshTimeout, MeshRetry), the network local rate
// limit filter (MeshRateLimit), TLS versions and cipher suites (MeshTLS).
func init() {
	allow(
		"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.idle_timeout",
		"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.max_connect_attempts",

		"envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit.stat_prefix",
		"envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit.token_bucket",
		"envoy.type.v3.TokenBucket.max_tokens",
		"envoy.type.v3.TokenBucket.tokens_per_fill",
		"envoy.type.v3.TokenBucket.fill_interval",

		"envoy.extensions.transport_sockets.tls.v3.TlsParameters.tls_maximum_protocol_version",
		"envoy.extensions.transport_sockets.tls.v3.TlsParameters.cipher_suites",
	)
	allowType(&netlocalratelimitv3.LocalRateLimit{})
}
