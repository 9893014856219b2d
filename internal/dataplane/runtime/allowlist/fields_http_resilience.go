package allowlist

import (
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
)

// The HTTP proxy's resilience features: MeshTimeout (route and connection
// manager timeouts), MeshRetry (route retry_policy), MeshFaultInjection
// (the fault HTTP filter) and MeshRateLimit (the local rate limit HTTP
// filter).
func init() {
	allow(
		// MeshTimeout: route and connection manager.
		"envoy.config.route.v3.RouteAction.idle_timeout",
		"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.common_http_protocol_options",
		"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.stream_idle_timeout",
		"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.request_headers_timeout",
		"envoy.config.core.v3.HttpProtocolOptions.idle_timeout",
		"envoy.config.core.v3.HttpProtocolOptions.max_connection_duration",
		"envoy.config.core.v3.HttpProtocolOptions.max_stream_duration",

		// MeshRetry.
		"envoy.config.route.v3.RouteAction.retry_policy",
		"envoy.config.route.v3.RetryPolicy.retry_on",
		"envoy.config.route.v3.RetryPolicy.num_retries",
		"envoy.config.route.v3.RetryPolicy.per_try_timeout",
		"envoy.config.route.v3.RetryPolicy.retry_back_off",
		"envoy.config.route.v3.RetryPolicy.rate_limited_retry_back_off",
		"envoy.config.route.v3.RetryPolicy.retriable_status_codes",
		"envoy.config.route.v3.RetryPolicy.retriable_headers",
		"envoy.config.route.v3.RetryPolicy.retriable_request_headers",
		"envoy.config.route.v3.RetryPolicy.RetryBackOff.base_interval",
		"envoy.config.route.v3.RetryPolicy.RetryBackOff.max_interval",
		"envoy.config.route.v3.RetryPolicy.RateLimitedRetryBackOff.reset_headers",
		"envoy.config.route.v3.RetryPolicy.RateLimitedRetryBackOff.max_interval",
		"envoy.config.route.v3.RetryPolicy.ResetHeader.name",
		"envoy.config.route.v3.RetryPolicy.ResetHeader.format",

		// MeshFaultInjection.
		"envoy.extensions.filters.http.fault.v3.HTTPFault.abort",
		"envoy.extensions.filters.http.fault.v3.HTTPFault.delay",
		"envoy.extensions.filters.http.fault.v3.HTTPFault.response_rate_limit",
		"envoy.extensions.filters.http.fault.v3.FaultAbort.http_status",
		"envoy.extensions.filters.http.fault.v3.FaultAbort.percentage",
		"envoy.extensions.filters.common.fault.v3.FaultDelay.fixed_delay",
		"envoy.extensions.filters.common.fault.v3.FaultDelay.percentage",
		"envoy.extensions.filters.common.fault.v3.FaultRateLimit.fixed_limit",
		"envoy.extensions.filters.common.fault.v3.FaultRateLimit.percentage",
		"envoy.extensions.filters.common.fault.v3.FaultRateLimit.FixedLimit.limit_kbps",
		"envoy.type.v3.FractionalPercent.numerator",
		"envoy.type.v3.FractionalPercent.denominator",

		// MeshRateLimit (HTTP).
		"envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit.stat_prefix",
		"envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit.status",
		"envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit.token_bucket",
		"envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit.filter_enabled",
		"envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit.filter_enforced",
		"envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit.response_headers_to_add",
		"envoy.type.v3.HttpStatus.code",
		"envoy.type.v3.TokenBucket.max_tokens",
		"envoy.type.v3.TokenBucket.tokens_per_fill",
		"envoy.type.v3.TokenBucket.fill_interval",
		"envoy.config.core.v3.RuntimeFractionalPercent.default_value",
		"envoy.config.core.v3.HeaderValueOption.header",
		"envoy.config.core.v3.HeaderValueOption.append_action",
		"envoy.config.core.v3.HeaderValue.key",
		"envoy.config.core.v3.HeaderValue.value",
	)
	allowType(&faultv3.HTTPFault{}, &localratelimitv3.LocalRateLimit{})
}
