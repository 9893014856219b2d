package allowlist

import (
	filealv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	otelalv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/open_telemetry/v3"
)

// MeshAccessLog: access logs of the HTTP connection manager and of
// tcp_proxy, to a file, to a TCP collector (a file access log to the
// Tcp backend's socket path, JSON {address, message}) or to an
// OpenTelemetry collector over OTLP/HTTP (runtime/accesslog).
func init() {
	allowType(&filealv3.FileAccessLog{}, &otelalv3.OpenTelemetryAccessLogConfig{})
	allow(
		"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.access_log",
		"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.access_log",
		"envoy.config.accesslog.v3.AccessLog.name",
		"envoy.config.accesslog.v3.AccessLog.typed_config",

		"envoy.extensions.access_loggers.file.v3.FileAccessLog.path",
		"envoy.extensions.access_loggers.file.v3.FileAccessLog.log_format",
		"envoy.config.core.v3.SubstitutionFormatString.text_format_source",
		"envoy.config.core.v3.SubstitutionFormatString.json_format",
		"envoy.config.core.v3.SubstitutionFormatString.omit_empty_values",
		"envoy.config.core.v3.DataSource.inline_string",
		"google.protobuf.Struct.fields",
		"google.protobuf.Struct.FieldsEntry.key",
		"google.protobuf.Struct.FieldsEntry.value",
		"google.protobuf.Value.string_value",
		"google.protobuf.Value.struct_value",

		"envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig.http_service",
		"envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig.log_name",
		"envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig.stat_prefix",
		"envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig.body",
		"envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig.attributes",
		"opentelemetry.proto.common.v1.AnyValue.string_value",
		"opentelemetry.proto.common.v1.AnyValue.kvlist_value",
		"opentelemetry.proto.common.v1.KeyValueList.values",
		"opentelemetry.proto.common.v1.KeyValue.key",
		"opentelemetry.proto.common.v1.KeyValue.value",
		"envoy.config.core.v3.HttpService.http_uri",
		"envoy.config.core.v3.HttpUri.uri",
		"envoy.config.core.v3.HttpUri.cluster",
		"envoy.config.core.v3.HttpUri.timeout",
	)
}
