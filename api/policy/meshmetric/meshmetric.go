// Package meshmetric holds the MeshMetric policy: its spec type and
// validation, in Kuma 2.14's shape.
//
// A MeshMetric makes the proxies of its top-level targetRef collect their
// own (sidecar) metrics and their applications' metrics, and expose them to
// Prometheus or push them to an OpenTelemetry collector. It has a single
// default section, no to/from/rules.
package meshmetric

import (
	"github.com/trellis-mesh/trellis/api/common"
)

// Spec is the spec of a MeshMetric policy.
type Spec struct {
	// TargetRef selects the proxies whose metrics are collected; absent
	// means the whole mesh.
	TargetRef *common.TargetRef `json:"targetRef,omitempty"`
	// Default is the metrics configuration.
	Default *Conf `json:"default,omitempty"`
}

// Conf is the metrics configuration.
type Conf struct {
	// Sidecar configures which of the proxy's own metrics are published.
	Sidecar *Sidecar `json:"sidecar,omitempty"`
	// Applications lists application endpoints the proxy scrapes and
	// publishes along with its own metrics.
	Applications *[]Application `json:"applications,omitempty"`
	// Backends are where metrics go.
	Backends *[]Backend `json:"backends,omitempty"`
}

// Sidecar configures the proxy's own metrics.
type Sidecar struct {
	// Regex keeps only metrics whose name fits this RE2 expression. It is
	// the pre-2.7 shape, replaced by Profiles; still accepted.
	Regex *string `json:"regex,omitempty"`
	// Profiles picks predefined groups of metrics and adjusts them.
	Profiles *Profiles `json:"profiles,omitempty"`
	// IncludeUnused also publishes metrics that never changed (counters
	// still at zero...); default false.
	IncludeUnused *bool `json:"includeUnused,omitempty"`
}

// Profiles picks which sidecar metrics are published.
type Profiles struct {
	// AppendProfiles combines predefined profiles (All, Basic, None).
	AppendProfiles *[]Profile `json:"appendProfiles,omitempty"`
	// Exclude drops metrics from the resulting set; Include wins over it.
	Exclude *[]Selector `json:"exclude,omitempty"`
	// Include adds metrics to the resulting set.
	Include *[]Selector `json:"include,omitempty"`
}

// Profile names a predefined group of metrics.
type Profile struct {
	// Name is All, Basic or None.
	Name string `json:"name"`
}

// Selector picks metrics by name.
type Selector struct {
	// Type is Prefix, Regex, Exact or Contains.
	Type string `json:"type"`
	// Match is the text or RE2 expression compared with metric names.
	Match string `json:"match"`
}

// Application is an application metrics endpoint the proxy scrapes.
type Application struct {
	// Name of the application, added as a label.
	Name *string `json:"name,omitempty"`
	// Path of the metrics endpoint (default "/metrics/prometheus").
	Path *string `json:"path,omitempty"`
	// Address the application listens on (default the inbound address).
	Address *string `json:"address,omitempty"`
	// Port of the metrics endpoint.
	Port uint32 `json:"port"`
}

// BackendType names a metrics backend.
type BackendType string

// Backend types; each needs the Backend field of the same name.
const (
	PrometheusBackendType    BackendType = "Prometheus"
	OpenTelemetryBackendType BackendType = "OpenTelemetry"
)

// Backend is where metrics go. Type says which other field holds its
// settings.
type Backend struct {
	// Type is Prometheus or OpenTelemetry.
	Type BackendType `json:"type"`
	// Prometheus exposes metrics on an HTTP endpoint for scraping.
	Prometheus *PrometheusBackend `json:"prometheus,omitempty"`
	// OpenTelemetry pushes metrics to a collector.
	OpenTelemetry *OpenTelemetryBackend `json:"openTelemetry,omitempty"`
}

// PrometheusBackend is an HTTP endpoint on the proxy that Prometheus
// scrapes.
type PrometheusBackend struct {
	// ClientId names the Prometheus server that discovers this endpoint
	// through MADS.
	ClientId *string `json:"clientId,omitempty"`
	// Port of the endpoint (default 5670).
	Port *uint32 `json:"port,omitempty"`
	// Path of the endpoint (default "/metrics").
	Path *string `json:"path,omitempty"`
	// Tls secures the endpoint.
	Tls *PrometheusTLS `json:"tls,omitempty"`
}

// PrometheusTLS secures the Prometheus endpoint.
type PrometheusTLS struct {
	// Mode is Disabled (the default), ProvidedTLS (certificates given to
	// the data plane) or ActiveMTLSBackend (mesh certificates).
	Mode string `json:"mode"`
}

// OpenTelemetryBackend is an OpenTelemetry collector metrics are pushed
// to, named either by Endpoint or by BackendRef.
type OpenTelemetryBackend struct {
	// Endpoint is the collector's "host:port", without a scheme
	// (deprecated by Kuma 2.14 for BackendRef).
	Endpoint string `json:"endpoint,omitempty"`
	// BackendRef names a MeshOpenTelemetryBackend resource instead.
	BackendRef *common.BackendResourceRef `json:"backendRef,omitempty"`
	// RefreshInterval is how often metrics are pushed, such as "60s".
	RefreshInterval *common.Duration `json:"refreshInterval,omitempty"`
}
