package allowlist

// HTTP routing features of the traffic policies: MeshHTTPRoute (query
// parameter and path-separated prefix matches, header edits, rewrites,
// mirrors) and MeshLoadBalancingStrategy (route hash policies).
func init() {
	allow(
		// Matches.
		"envoy.config.route.v3.RouteMatch.path_separated_prefix",
		"envoy.config.route.v3.RouteMatch.query_parameters",
		"envoy.config.route.v3.QueryParameterMatcher.name",
		"envoy.config.route.v3.QueryParameterMatcher.string_match",
		"envoy.config.route.v3.QueryParameterMatcher.present_match",

		// Header edits: route, virtual host, route configuration.
		"envoy.config.route.v3.Route.request_headers_to_add",
		"envoy.config.route.v3.Route.request_headers_to_remove",
		"envoy.config.route.v3.Route.response_headers_to_add",
		"envoy.config.route.v3.Route.response_headers_to_remove",
		"envoy.config.route.v3.VirtualHost.request_headers_to_add",
		"envoy.config.route.v3.VirtualHost.request_headers_to_remove",
		"envoy.config.route.v3.VirtualHost.response_headers_to_add",
		"envoy.config.route.v3.VirtualHost.response_headers_to_remove",
		"envoy.config.route.v3.RouteConfiguration.request_headers_to_add",
		"envoy.config.route.v3.RouteConfiguration.request_headers_to_remove",
		"envoy.config.route.v3.RouteConfiguration.response_headers_to_add",
		"envoy.config.route.v3.RouteConfiguration.response_headers_to_remove",
		"envoy.config.core.v3.HeaderValueOption.header",
		"envoy.config.core.v3.HeaderValueOption.append",
		"envoy.config.core.v3.HeaderValueOption.append_action",
		"envoy.config.core.v3.HeaderValueOption.keep_empty_value",
		"envoy.config.core.v3.HeaderValue.key",
		"envoy.config.core.v3.HeaderValue.value",

		// Rewrites.
		"envoy.config.route.v3.RouteAction.prefix_rewrite",
		"envoy.config.route.v3.RouteAction.regex_rewrite",
		"envoy.type.matcher.v3.RegexMatchAndSubstitute.pattern",
		"envoy.type.matcher.v3.RegexMatchAndSubstitute.substitution",
		"envoy.config.route.v3.RouteAction.host_rewrite_literal",

		// Mirrors.
		"envoy.config.route.v3.RouteAction.request_mirror_policies",
		"envoy.config.route.v3.RouteAction.RequestMirrorPolicy.cluster",
		"envoy.config.route.v3.RouteAction.RequestMirrorPolicy.runtime_fraction",
		"envoy.config.core.v3.RuntimeFractionalPercent.default_value",
		"envoy.type.v3.FractionalPercent.numerator",
		"envoy.type.v3.FractionalPercent.denominator",

		// Hash policies.
		"envoy.config.route.v3.RouteAction.hash_policy",
		"envoy.config.route.v3.RouteAction.HashPolicy.header",
		"envoy.config.route.v3.RouteAction.HashPolicy.cookie",
		"envoy.config.route.v3.RouteAction.HashPolicy.connection_properties",
		"envoy.config.route.v3.RouteAction.HashPolicy.query_parameter",
		"envoy.config.route.v3.RouteAction.HashPolicy.filter_state",
		"envoy.config.route.v3.RouteAction.HashPolicy.terminal",
		"envoy.config.route.v3.RouteAction.HashPolicy.Header.header_name",
		"envoy.config.route.v3.RouteAction.HashPolicy.Cookie.name",
		"envoy.config.route.v3.RouteAction.HashPolicy.Cookie.ttl",
		"envoy.config.route.v3.RouteAction.HashPolicy.Cookie.path",
		"envoy.config.route.v3.RouteAction.HashPolicy.ConnectionProperties.source_ip",
		"envoy.config.route.v3.RouteAction.HashPolicy.QueryParameter.name",
		"envoy.config.route.v3.RouteAction.HashPolicy.FilterState.key",
	)
}
