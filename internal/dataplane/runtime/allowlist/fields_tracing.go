package allowlist

import (
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
)

// MeshTrace: the HTTP connection manager's tracing with the Zipkin
// (HTTP JSON) or OpenTelemetry (OTLP/HTTP) provider (runtime/tracing).
// The collector clusters are STATIC clusters.
func init() {
	allowType(&tracev3.ZipkinConfig{}, &tracev3.OpenTelemetryConfig{})
	allow(
		"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.tracing",
		"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing.client_sampling",
		"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing.random_sampling",
		"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing.overall_sampling",
		"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing.custom_tags",
		"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing.provider",
		"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing.spawn_upstream_span",
		"envoy.type.tracing.v3.CustomTag.tag",
		"envoy.type.tracing.v3.CustomTag.literal",
		"envoy.type.tracing.v3.CustomTag.request_header",
		"envoy.type.tracing.v3.CustomTag.Literal.value",
		"envoy.type.tracing.v3.CustomTag.Header.name",
		"envoy.type.tracing.v3.CustomTag.Header.default_value",
		"envoy.config.trace.v3.Tracing.Http.name",
		"envoy.config.trace.v3.Tracing.Http.typed_config",
		"envoy.config.trace.v3.ZipkinConfig.collector_cluster",
		"envoy.config.trace.v3.ZipkinConfig.collector_endpoint",
		"envoy.config.trace.v3.ZipkinConfig.collector_endpoint_version",
		"envoy.config.trace.v3.ZipkinConfig.collector_hostname",
		"envoy.config.trace.v3.ZipkinConfig.trace_id_128bit",
		"envoy.config.trace.v3.ZipkinConfig.shared_span_context",
		"envoy.config.trace.v3.OpenTelemetryConfig.http_service",
		"envoy.config.trace.v3.OpenTelemetryConfig.service_name",
	)
}
