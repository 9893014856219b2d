// Package meshhealthcheck holds the MeshHealthCheck policy: its spec type
// and validation.
//
// MeshHealthCheck makes proxies actively probe their upstream endpoints
// (TCP, HTTP or gRPC) and stop sending traffic to the ones that fail.
package meshhealthcheck

import "github.com/trellis-mesh/trellis/api/common"

// Spec is the spec of a MeshHealthCheck policy (Kuma 2.14 shape). It only
// has outbound (to) sections.
type Spec struct {
	// TargetRef selects the proxies that run the checks; absent means the
	// whole mesh.
	TargetRef *common.TargetRef `json:"targetRef,omitempty"`
	// To configures checks per group of destinations.
	To []To `json:"to,omitempty"`
}

// To is one outbound section: destinations and how to check them.
type To struct {
	// TargetRef selects the destinations.
	TargetRef common.TargetRef `json:"targetRef"`
	// Default holds the health check settings.
	Default Conf `json:"default,omitzero"`
}

// Conf holds health check settings; at least one of TCP, HTTP and GRPC must
// be set.
type Conf struct {
	// Interval is the time between checks (default 1m); must be positive.
	Interval *common.Duration `json:"interval,omitempty"`
	// UnhealthyInterval is the time between checks of an unhealthy endpoint
	// (newer Kuma; defaults to Interval).
	UnhealthyInterval *common.Duration `json:"unhealthyInterval,omitempty"`
	// Timeout bounds each check (default 15s); must be positive.
	Timeout *common.Duration `json:"timeout,omitempty"`
	// UnhealthyThreshold is how many failed checks in a row mark an
	// endpoint unhealthy (default 5).
	UnhealthyThreshold *int32 `json:"unhealthyThreshold,omitempty"`
	// HealthyThreshold is how many passed checks in a row mark it healthy
	// again (default 1).
	HealthyThreshold *int32 `json:"healthyThreshold,omitempty"`
	// InitialJitter delays the first check by a random time up to this.
	InitialJitter *common.Duration `json:"initialJitter,omitempty"`
	// IntervalJitter adds a random time up to this to every interval.
	IntervalJitter *common.Duration `json:"intervalJitter,omitempty"`
	// IntervalJitterPercent adds a random share (0-100%) of the interval.
	IntervalJitterPercent *int32 `json:"intervalJitterPercent,omitempty"`
	// HealthyPanicThreshold is the healthy percentage under which Envoy
	// balances over all endpoints anyway; an integer or a decimal string.
	// Kuma 2.14 still accepts it here (newer Kuma moved it to
	// MeshCircuitBreaker).
	HealthyPanicThreshold *common.IntOrString `json:"healthyPanicThreshold,omitempty"`
	// FailTrafficOnPanic fails all requests instead of balancing over
	// unhealthy endpoints in panic mode.
	FailTrafficOnPanic *bool `json:"failTrafficOnPanic,omitempty"`
	// EventLogPath is a file where health check events are logged.
	EventLogPath *string `json:"eventLogPath,omitempty"`
	// AlwaysLogHealthCheckFailures logs every failure, not only the first.
	AlwaysLogHealthCheckFailures *bool `json:"alwaysLogHealthCheckFailures,omitempty"`
	// NoTrafficInterval is the check interval for clusters that never had
	// traffic (default 60s).
	NoTrafficInterval *common.Duration `json:"noTrafficInterval,omitempty"`
	// TCP checks that a connection opens and, optionally, an exchange of
	// bytes.
	TCP *TCPHealthCheck `json:"tcp,omitempty"`
	// HTTP checks an HTTP endpoint.
	HTTP *HTTPHealthCheck `json:"http,omitempty"`
	// GRPC checks with the gRPC health checking protocol.
	GRPC *GRPCHealthCheck `json:"grpc,omitempty"`
	// ReuseConnection keeps one connection across checks (default true).
	ReuseConnection *bool `json:"reuseConnection,omitempty"`
}

// TCPHealthCheck configures a TCP check.
type TCPHealthCheck struct {
	// Disabled turns this check off.
	Disabled *bool `json:"disabled,omitempty"`
	// Send is the base64-encoded payload sent to the endpoint.
	Send *string `json:"send,omitempty"`
	// Receive lists base64-encoded blocks expected in the reply, in order;
	// empty means connect-only.
	Receive []string `json:"receive,omitempty"`
}

// HTTPHealthCheck configures an HTTP check.
type HTTPHealthCheck struct {
	// Disabled turns this check off.
	Disabled *bool `json:"disabled,omitempty"`
	// Path is the requested path (default "/").
	Path *string `json:"path,omitempty"`
	// RequestHeadersToAdd adds headers to each check request.
	RequestHeadersToAdd *HeaderModifier `json:"requestHeadersToAdd,omitempty"`
	// ExpectedStatuses lists the healthy response codes (default 200).
	ExpectedStatuses []int32 `json:"expectedStatuses,omitempty"`
}

// GRPCHealthCheck configures a gRPC check.
type GRPCHealthCheck struct {
	// Disabled turns this check off.
	Disabled *bool `json:"disabled,omitempty"`
	// ServiceName is sent in the health check request.
	ServiceName *string `json:"serviceName,omitempty"`
	// Authority is the :authority of the request (default: the cluster
	// name).
	Authority *string `json:"authority,omitempty"`
}

// HeaderModifier sets or appends headers; several values of one header are
// written comma-separated.
type HeaderModifier struct {
	// Set replaces the headers' values.
	Set []HeaderKeyValue `json:"set,omitempty"`
	// Add appends to the headers' values.
	Add []HeaderKeyValue `json:"add,omitempty"`
}

// HeaderKeyValue is a header name and value.
type HeaderKeyValue struct {
	// Name is the lower-case header name.
	Name string `json:"name"`
	// Value is the header value.
	Value string `json:"value"`
}
