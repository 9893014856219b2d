package allowlist

// Zone proxies and cross-zone traffic: a zone ingress's filter chains are
// matched by SNI, and cross-zone clusters send one in their upstream TLS.
func init() {
	allow(
		"envoy.config.listener.v3.FilterChainMatch.server_names",
		"envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext.sni",
	)
}
