// Package meshcircuitbreaker holds the MeshCircuitBreaker policy: its spec
// type, its validation and the default policy every new mesh gets.
//
// MeshCircuitBreaker caps connections and requests to an upstream and
// ejects misbehaving endpoints (outlier detection, a passive health check).
package meshcircuitbreaker

import "github.com/trellis-mesh/trellis/api/common"

// Spec is the spec of a MeshCircuitBreaker policy (Kuma 2.14 shape).
type Spec struct {
	// TargetRef selects the proxies the policy configures; absent means the
	// whole mesh.
	TargetRef *common.TargetRef `json:"targetRef,omitempty"`
	// To configures circuit breaking per group of destinations.
	To []To `json:"to,omitempty"`
	// From configures circuit breaking of inbound traffic per group of
	// clients. Deprecated in Kuma 2.14 in favour of Rules.
	From []From `json:"from,omitempty"`
	// Rules configures circuit breaking of all inbound traffic. It cannot be
	// combined with To or From.
	Rules []Rule `json:"rules,omitempty"`
}

// To is one outbound section: destinations and their settings.
type To struct {
	// TargetRef selects the destinations.
	TargetRef common.TargetRef `json:"targetRef"`
	// Default holds the settings for those destinations.
	Default Conf `json:"default,omitzero"`
}

// From is one inbound section: clients and their settings.
type From struct {
	// TargetRef selects the clients; only kind Mesh is accepted.
	TargetRef common.TargetRef `json:"targetRef"`
	// Default holds the settings for traffic from those clients.
	Default Conf `json:"default,omitzero"`
}

// Rule is one inbound rule; it applies to all inbound traffic.
type Rule struct {
	// Default holds the inbound settings.
	Default Conf `json:"default,omitzero"`
}

// Conf holds the circuit breaker settings; at least one part must be set.
type Conf struct {
	// ConnectionLimits open the circuit when a limit is exceeded.
	ConnectionLimits *ConnectionLimits `json:"connectionLimits,omitempty"`
	// OutlierDetection ejects endpoints that fail more than the others.
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
}

// ConnectionLimits are Envoy's circuit breaker thresholds; each must be
// greater than zero when set.
type ConnectionLimits struct {
	// MaxConnections caps connections to the upstream cluster (Envoy: 1024).
	MaxConnections *uint32 `json:"maxConnections,omitempty"`
	// MaxConnectionPools caps concurrent connection pools (unlimited by
	// default).
	MaxConnectionPools *uint32 `json:"maxConnectionPools,omitempty"`
	// MaxPendingRequests caps queued requests (Envoy: 1024); for non-HTTP
	// traffic it limits connections.
	MaxPendingRequests *uint32 `json:"maxPendingRequests,omitempty"`
	// MaxRetries caps parallel retries (Envoy: 3).
	MaxRetries *uint32 `json:"maxRetries,omitempty"`
	// MaxRequests caps parallel HTTP requests (Envoy: 1024).
	MaxRequests *uint32 `json:"maxRequests,omitempty"`
}

// OutlierDetection configures passive health checking.
type OutlierDetection struct {
	// Disabled turns outlier detection off.
	Disabled *bool `json:"disabled,omitempty"`
	// Interval is the time between ejection sweeps; it must be positive.
	Interval *common.Duration `json:"interval,omitempty"`
	// BaseEjectionTime is how long an endpoint stays ejected, multiplied by
	// the number of times it was ejected; it must be positive.
	BaseEjectionTime *common.Duration `json:"baseEjectionTime,omitempty"`
	// MaxEjectionPercent caps the share of endpoints ejected (default 10%).
	MaxEjectionPercent *uint32 `json:"maxEjectionPercent,omitempty"`
	// SplitExternalAndLocalErrors counts locally originated failures
	// (timeouts, resets) apart from upstream errors.
	SplitExternalAndLocalErrors *bool `json:"splitExternalAndLocalErrors,omitempty"`
	// Detectors are the ejection triggers; at least one is required.
	Detectors *Detectors `json:"detectors,omitempty"`
	// HealthyPanicThreshold is the healthy percentage under which Envoy
	// ignores health and balances over all endpoints (default 50, 0
	// disables panic mode); an integer or a decimal string.
	HealthyPanicThreshold *common.IntOrString `json:"healthyPanicThreshold,omitempty"`
}

// Detectors are the outlier detectors; several may be active at once.
type Detectors struct {
	// TotalFailures ejects after consecutive server errors.
	TotalFailures *Consecutive `json:"totalFailures,omitempty"`
	// GatewayFailures ejects after consecutive 502/503/504 responses.
	GatewayFailures *Consecutive `json:"gatewayFailures,omitempty"`
	// LocalOriginFailures ejects after consecutive local failures; used only
	// with SplitExternalAndLocalErrors.
	LocalOriginFailures *Consecutive `json:"localOriginFailures,omitempty"`
	// SuccessRate ejects endpoints whose success rate is a statistical
	// outlier.
	SuccessRate *SuccessRate `json:"successRate,omitempty"`
	// FailurePercentage ejects endpoints whose failure rate reaches a fixed
	// threshold.
	FailurePercentage *FailurePercentage `json:"failurePercentage,omitempty"`
}

// Consecutive is a detector triggered by a run of failures.
type Consecutive struct {
	// Consecutive is the number of failures in a row that ejects an
	// endpoint; it must be greater than zero.
	Consecutive *uint32 `json:"consecutive,omitempty"`
}

// SuccessRate configures success-rate outlier detection.
type SuccessRate struct {
	// MinimumHosts is how many endpoints need enough volume for detection
	// to run.
	MinimumHosts *uint32 `json:"minimumHosts,omitempty"`
	// RequestVolume is the requests per interval an endpoint needs to be
	// judged.
	RequestVolume *uint32 `json:"requestVolume,omitempty"`
	// StandardDeviationFactor sets the ejection threshold as mean minus
	// factor × standard deviation; an integer or a decimal string, > 0.
	StandardDeviationFactor *common.IntOrString `json:"standardDeviationFactor,omitempty"`
}

// FailurePercentage configures failure-percentage outlier detection.
type FailurePercentage struct {
	// MinimumHosts is how many endpoints need enough volume for detection
	// to run.
	MinimumHosts *uint32 `json:"minimumHosts,omitempty"`
	// RequestVolume is the requests per interval an endpoint needs to be
	// judged.
	RequestVolume *uint32 `json:"requestVolume,omitempty"`
	// Threshold is the failure percentage (0-100) at which an endpoint is
	// ejected.
	Threshold *uint32 `json:"threshold,omitempty"`
}
