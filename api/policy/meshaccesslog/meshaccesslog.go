// Package meshaccesslog holds the MeshAccessLog policy: its spec type and
// validation, in Kuma 2.14's shape.
//
// A MeshAccessLog makes the proxies of its top-level targetRef log the
// requests and connections they handle to files, TCP collectors or
// OpenTelemetry. Outbound traffic is configured per destination in to[],
// inbound traffic in rules[] (or, deprecated since 2.10, per client in
// from[]).
package meshaccesslog

import (
	"encoding/json"

	"github.com/trellis-mesh/trellis/api/common"
)

// Spec is the spec of a MeshAccessLog policy.
type Spec struct {
	// TargetRef selects the proxies that log; absent means the whole mesh.
	TargetRef *common.TargetRef `json:"targetRef,omitempty"`
	// To configures logging of outbound traffic, per destination.
	To []To `json:"to,omitempty"`
	// From configures logging of inbound traffic, per client. Deprecated
	// by Kuma in favour of Rules; it cannot be combined with Rules.
	From []From `json:"from,omitempty"`
	// Rules configures logging of inbound traffic from any client.
	Rules []Rule `json:"rules,omitempty"`
}

// To is the logging configuration for traffic to one destination.
type To struct {
	// TargetRef is the destination: the whole Mesh, a MeshService (or
	// MeshExternalService, MeshMultiZoneService) or a MeshHTTPRoute.
	TargetRef common.TargetRef `json:"targetRef"`
	// Default is the configuration for that traffic.
	Default Conf `json:"default"`
}

// From is the logging configuration for traffic from a group of clients.
type From struct {
	// TargetRef is the group of clients: only Mesh is accepted.
	TargetRef common.TargetRef `json:"targetRef"`
	// Default is the configuration for that traffic.
	Default Conf `json:"default"`
}

// Rule is the logging configuration for inbound traffic.
type Rule struct {
	// Default is the configuration for inbound traffic.
	Default Conf `json:"default"`
}

// Conf lists where logs go.
type Conf struct {
	// Backends receive every log line; required, and an empty list turns
	// logging off for the selected traffic.
	Backends *[]Backend `json:"backends,omitempty"`
}

// BackendType names a kind of log backend.
type BackendType string

// Backend types; each needs the Backend field of the same name.
const (
	TCPBackendType           BackendType = "Tcp"
	FileBackendType          BackendType = "File"
	OpenTelemetryBackendType BackendType = "OpenTelemetry"
)

// Backend is one destination for logs. Type says which other field holds
// its settings.
type Backend struct {
	// Type is Tcp, File or OpenTelemetry.
	Type BackendType `json:"type"`
	// Tcp sends log lines to a TCP collector.
	Tcp *TCPBackend `json:"tcp,omitempty"`
	// File writes log lines to a file.
	File *FileBackend `json:"file,omitempty"`
	// OpenTelemetry sends log records to an OpenTelemetry collector.
	OpenTelemetry *OtelBackend `json:"openTelemetry,omitempty"`
}

// TCPBackend sends log lines to a TCP address.
type TCPBackend struct {
	// Format of the lines; absent means Kuma's default plain format.
	Format *Format `json:"format,omitempty"`
	// Address of the collector, such as "127.0.0.1:5000".
	Address string `json:"address"`
}

// FileBackend writes log lines to a file.
type FileBackend struct {
	// Format of the lines; absent means Kuma's default plain format.
	Format *Format `json:"format,omitempty"`
	// Path is the absolute path of the file, such as "/dev/stdout".
	Path string `json:"path"`
}

// OtelBackend sends log records to an OpenTelemetry collector, named either
// by Endpoint or by BackendRef.
type OtelBackend struct {
	// Attributes are added to each record; values may use Envoy's
	// %COMMAND% placeholders, keys may not.
	Attributes []JSONValue `json:"attributes,omitempty"`
	// Body is the record body: a string or an OTLP AnyValue object, which
	// may hold placeholders. Kept as raw JSON.
	Body json.RawMessage `json:"body,omitempty"`
	// Endpoint is the collector's host and port, such as
	// "otel-collector:4317" (deprecated by Kuma 2.14 for BackendRef).
	Endpoint string `json:"endpoint,omitempty"`
	// BackendRef names a MeshOpenTelemetryBackend resource instead.
	BackendRef *common.BackendResourceRef `json:"backendRef,omitempty"`
}

// FormatType names a log line format.
type FormatType string

// Formats; each needs the Format field of the same name.
const (
	PlainFormatType FormatType = "Plain"
	JSONFormatType  FormatType = "Json"
)

// Format says how a log line is written.
type Format struct {
	// Type is Plain or Json.
	Type FormatType `json:"type"`
	// Plain is the line template, with Envoy %COMMAND% placeholders.
	Plain *string `json:"plain,omitempty"`
	// Json lists the keys of a JSON object line and their values.
	Json *[]JSONValue `json:"json,omitempty"`
	// OmitEmptyValues leaves out empty values.
	OmitEmptyValues *bool `json:"omitEmptyValues,omitempty"`
}

// JSONValue is a key and its value (a template with placeholders).
type JSONValue struct {
	// Key is the key.
	Key string `json:"key,omitempty"`
	// Value is the value template.
	Value string `json:"value,omitempty"`
}
