// Package meshtrace holds the MeshTrace policy: its spec type and
// validation, in Kuma 2.14's shape.
//
// A MeshTrace makes the proxies of its top-level targetRef report request
// spans to one tracing backend (Zipkin, Datadog or OpenTelemetry), with
// sampling rates and extra span tags. It has a single default section, no
// to/from/rules.
package meshtrace

import (
	"github.com/trellis-mesh/trellis/api/common"
)

// Spec is the spec of a MeshTrace policy.
type Spec struct {
	// TargetRef selects the proxies that trace; absent means the whole mesh.
	TargetRef *common.TargetRef `json:"targetRef,omitempty"`
	// Default is the tracing configuration.
	Default Conf `json:"default"`
}

// Conf is the tracing configuration.
type Conf struct {
	// Backends holds zero or one backend (a list for historical reasons);
	// it is required, and an empty list turns tracing off.
	Backends *[]Backend `json:"backends,omitempty"`
	// Sampling says which share of requests is traced.
	Sampling *Sampling `json:"sampling,omitempty"`
	// Tags are added to every span, from literals or request headers.
	Tags *[]Tag `json:"tags,omitempty"`
}

// BackendType names a tracing backend.
type BackendType string

// Backend types; each needs the Backend field of the same name.
const (
	ZipkinBackendType        BackendType = "Zipkin"
	DatadogBackendType       BackendType = "Datadog"
	OpenTelemetryBackendType BackendType = "OpenTelemetry"
)

// Backend is where spans are sent. Type says which other field holds its
// settings.
type Backend struct {
	// Type is Zipkin, Datadog or OpenTelemetry.
	Type BackendType `json:"type"`
	// Zipkin sends spans to a Zipkin collector.
	Zipkin *ZipkinBackend `json:"zipkin,omitempty"`
	// Datadog sends spans to a Datadog agent.
	Datadog *DatadogBackend `json:"datadog,omitempty"`
	// OpenTelemetry sends spans to an OpenTelemetry collector.
	OpenTelemetry *OpenTelemetryBackend `json:"openTelemetry,omitempty"`
}

// ZipkinBackend is a Zipkin collector.
type ZipkinBackend struct {
	// Url of the collector's span endpoint, such as
	// "http://jaeger-collector:9411/api/v2/spans".
	Url string `json:"url"`
	// TraceId128Bit makes 128-bit trace ids (default false).
	TraceId128Bit *bool `json:"traceId128bit,omitempty"`
	// ApiVersion is httpJson (the default) or httpProto.
	ApiVersion *string `json:"apiVersion,omitempty"`
	// SharedSpanContext makes client and server spans share one context
	// (default true).
	SharedSpanContext *bool `json:"sharedSpanContext,omitempty"`
}

// DatadogBackend is a Datadog agent.
type DatadogBackend struct {
	// Url of the agent: http scheme, host and port only, such as
	// "http://127.0.0.1:8126".
	Url string `json:"url"`
	// SplitService names services per traffic direction and destination
	// ("backend_INBOUND", "backend_OUTBOUND_db") (default false).
	SplitService *bool `json:"splitService,omitempty"`
}

// OpenTelemetryBackend is an OpenTelemetry collector, named either by
// Endpoint or by BackendRef.
type OpenTelemetryBackend struct {
	// Endpoint is a gRPC "host:port" or an http(s) URL of the collector
	// (deprecated by Kuma 2.14 for BackendRef).
	Endpoint string `json:"endpoint,omitempty"`
	// BackendRef names a MeshOpenTelemetryBackend resource instead.
	BackendRef *common.BackendResourceRef `json:"backendRef,omitempty"`
}

// Sampling holds sampling rates in percent (0-100), each an integer or a
// decimal string such as "0.1".
type Sampling struct {
	// Overall caps the share of requests traced after the other checks
	// (default 100).
	Overall *common.IntOrString `json:"overall,omitempty"`
	// Client is the share of requests with an x-client-trace-id header that
	// are force-traced (default 100).
	Client *common.IntOrString `json:"client,omitempty"`
	// Random is the share of other requests picked for tracing (default
	// 100).
	Random *common.IntOrString `json:"random,omitempty"`
}

// Tag is a span tag whose value is a literal or taken from a header; exactly
// one of the two is set.
type Tag struct {
	// Name of the tag.
	Name string `json:"name"`
	// Literal is a fixed value.
	Literal *string `json:"literal,omitempty"`
	// Header takes the value from a request header.
	Header *HeaderTag `json:"header,omitempty"`
}

// HeaderTag takes a tag value from a request header.
type HeaderTag struct {
	// Name of the header.
	Name string `json:"name"`
	// Default is used when the header is missing; without it the tag is
	// left out.
	Default *string `json:"default,omitempty"`
}
