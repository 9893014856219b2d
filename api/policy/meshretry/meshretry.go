// Package meshretry holds the MeshRetry policy: its spec type, its
// validation and the default policy every new mesh gets.
//
// MeshRetry tells the proxies when and how often to retry failed outbound
// requests (HTTP, gRPC) and connection attempts (TCP).
package meshretry

import "github.com/trellis-mesh/trellis/api/common"

// Spec is the spec of a MeshRetry policy (Kuma 2.14 shape). It only has
// outbound (to) sections.
type Spec struct {
	// TargetRef selects the proxies the policy configures; absent means the
	// whole mesh.
	TargetRef *common.TargetRef `json:"targetRef,omitempty"`
	// To configures retries per group of destinations.
	To []To `json:"to,omitempty"`
}

// To is one outbound section: destinations and their retry settings.
type To struct {
	// TargetRef selects the destinations.
	TargetRef common.TargetRef `json:"targetRef"`
	// Default holds the retry settings for those destinations.
	Default Conf `json:"default,omitzero"`
}

// Conf holds retry settings per protocol; the proxy uses the section that
// matches the most specific protocol of the traffic.
type Conf struct {
	// TCP configures reconnect attempts for TCP traffic.
	TCP *TCP `json:"tcp,omitempty"`
	// HTTP configures retries of HTTP requests.
	HTTP *HTTP `json:"http,omitempty"`
	// GRPC configures retries of gRPC calls.
	GRPC *GRPC `json:"grpc,omitempty"`
}

// TCP configures TCP connection retries.
type TCP struct {
	// MaxConnectAttempt is how many connection attempts are made before
	// giving up; it must be greater than zero.
	MaxConnectAttempt *uint32 `json:"maxConnectAttempt,omitempty"`
}

// HTTP configures retries of HTTP requests.
type HTTP struct {
	// NumRetries is how many times a failed request is retried (Envoy's
	// default is 1).
	NumRetries *uint32 `json:"numRetries,omitempty"`
	// PerTryTimeout bounds each attempt; 0 disables it.
	PerTryTimeout *common.Duration `json:"perTryTimeout,omitempty"`
	// BackOff sets the exponential back-off between attempts.
	BackOff *BackOff `json:"backOff,omitempty"`
	// RateLimitedBackOff waits as long as a rate-limiting upstream asks
	// (Retry-After and similar headers) instead of backing off.
	RateLimitedBackOff *RateLimitedBackOff `json:"rateLimitedBackOff,omitempty"`
	// RetryOn lists the conditions that trigger a retry: one of the
	// HTTPRetryOn constants or an HTTP status code such as "503".
	RetryOn []HTTPRetryOn `json:"retryOn,omitempty"`
	// RetriableResponseHeaders triggers a retry when a response carries a
	// matching header.
	RetriableResponseHeaders []HeaderMatch `json:"retriableResponseHeaders,omitempty"`
	// RetriableRequestHeaders allows retries only of requests that carry a
	// matching header.
	RetriableRequestHeaders []HeaderMatch `json:"retriableRequestHeaders,omitempty"`
	// HostSelection lists predicates that steer retries away from hosts
	// already tried.
	HostSelection []Predicate `json:"hostSelection,omitempty"`
	// HostSelectionMaxAttempts is how many times host selection is retried
	// before the last selected host is used.
	HostSelectionMaxAttempts *int64 `json:"hostSelectionMaxAttempts,omitempty"`
}

// GRPC configures retries of gRPC calls.
type GRPC struct {
	// NumRetries is how many times a failed call is retried.
	NumRetries *uint32 `json:"numRetries,omitempty"`
	// PerTryTimeout bounds each attempt; 0 disables it.
	PerTryTimeout *common.Duration `json:"perTryTimeout,omitempty"`
	// BackOff sets the exponential back-off between attempts.
	BackOff *BackOff `json:"backOff,omitempty"`
	// RateLimitedBackOff waits as long as a rate-limiting upstream asks.
	RateLimitedBackOff *RateLimitedBackOff `json:"rateLimitedBackOff,omitempty"`
	// RetryOn lists the gRPC status codes that trigger a retry.
	RetryOn []GRPCRetryOn `json:"retryOn,omitempty"`
}

// BackOff is an exponential back-off with jitter.
type BackOff struct {
	// BaseInterval is the first back-off step (default 25ms); it must be
	// greater than zero.
	BaseInterval *common.Duration `json:"baseInterval,omitempty"`
	// MaxInterval caps the back-off (default 10 × BaseInterval).
	MaxInterval *common.Duration `json:"maxInterval,omitempty"`
}

// RateLimitedBackOff takes the wait time from response headers.
type RateLimitedBackOff struct {
	// ResetHeaders are the headers tried in order, matched
	// case-insensitively; the first that parses sets the wait.
	ResetHeaders []ResetHeader `json:"resetHeaders,omitempty"`
	// MaxInterval caps the wait (default 300s); it must be greater than
	// zero.
	MaxInterval *common.Duration `json:"maxInterval,omitempty"`
}

// ResetHeader names a header that tells when to retry.
type ResetHeader struct {
	// Name is the header name, e.g. "retry-after".
	Name string `json:"name"`
	// Format is how the header's value reads: Seconds or UnixTimestamp.
	Format RateLimitFormat `json:"format"`
}

// RateLimitFormat is the format of a reset header's value.
type RateLimitFormat string

// Reset header formats.
const (
	Seconds       RateLimitFormat = "Seconds"
	UnixTimestamp RateLimitFormat = "UnixTimestamp"
)

// Predicate steers host selection on retries.
type Predicate struct {
	// PredicateType is OmitPreviousHosts, OmitHostsWithTags or
	// OmitPreviousPriorities.
	PredicateType PredicateType `json:"predicate"`
	// Tags selects the hosts to skip; required with OmitHostsWithTags.
	Tags map[string]string `json:"tags,omitempty"`
	// UpdateFrequency is how often the priority load is recomputed; required
	// (greater than zero) with OmitPreviousPriorities.
	UpdateFrequency *int32 `json:"updateFrequency,omitempty"`
}

// PredicateType names a host selection predicate.
type PredicateType string

// Host selection predicates.
const (
	OmitPreviousHosts      PredicateType = "OmitPreviousHosts"
	OmitHostsWithTags      PredicateType = "OmitHostsWithTags"
	OmitPreviousPriorities PredicateType = "OmitPreviousPriorities"
)

// HeaderMatch matches an HTTP header by name and value.
type HeaderMatch struct {
	// Type is how the value is compared: Exact (the default), Present,
	// RegularExpression, Absent or Prefix.
	Type *HeaderMatchType `json:"type,omitempty"`
	// Name is the lower-case header name.
	Name string `json:"name"`
	// Value is compared according to Type.
	Value string `json:"value,omitempty"`
}

// HeaderMatchType is how a HeaderMatch compares values.
type HeaderMatchType string

// Header match types.
const (
	HeaderMatchExact             HeaderMatchType = "Exact"
	HeaderMatchPresent           HeaderMatchType = "Present"
	HeaderMatchRegularExpression HeaderMatchType = "RegularExpression"
	HeaderMatchAbsent            HeaderMatchType = "Absent"
	HeaderMatchPrefix            HeaderMatchType = "Prefix"
)

// HTTPRetryOn is a condition that triggers an HTTP retry, or an HTTP
// status code written as a string.
type HTTPRetryOn string

// HTTP retry conditions.
const (
	All5xx                  HTTPRetryOn = "5xx"
	GatewayError            HTTPRetryOn = "GatewayError"
	Reset                   HTTPRetryOn = "Reset"
	Retriable4xx            HTTPRetryOn = "Retriable4xx"
	ConnectFailure          HTTPRetryOn = "ConnectFailure"
	EnvoyRatelimited        HTTPRetryOn = "EnvoyRatelimited"
	RefusedStream           HTTPRetryOn = "RefusedStream"
	Http3PostConnectFailure HTTPRetryOn = "Http3PostConnectFailure"
	HttpMethodConnect       HTTPRetryOn = "HttpMethodConnect"
	HttpMethodDelete        HTTPRetryOn = "HttpMethodDelete"
	HttpMethodGet           HTTPRetryOn = "HttpMethodGet"
	HttpMethodHead          HTTPRetryOn = "HttpMethodHead"
	HttpMethodOptions       HTTPRetryOn = "HttpMethodOptions"
	HttpMethodPatch         HTTPRetryOn = "HttpMethodPatch"
	HttpMethodPost          HTTPRetryOn = "HttpMethodPost"
	HttpMethodPut           HTTPRetryOn = "HttpMethodPut"
	HttpMethodTrace         HTTPRetryOn = "HttpMethodTrace"
)

// GRPCRetryOn is a gRPC status that triggers a retry.
type GRPCRetryOn string

// gRPC retry conditions.
const (
	Canceled          GRPCRetryOn = "Canceled"
	DeadlineExceeded  GRPCRetryOn = "DeadlineExceeded"
	Internal          GRPCRetryOn = "Internal"
	ResourceExhausted GRPCRetryOn = "ResourceExhausted"
	Unavailable       GRPCRetryOn = "Unavailable"
)
