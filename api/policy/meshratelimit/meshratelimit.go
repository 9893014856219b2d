// Package meshratelimit holds the MeshRateLimit policy: its spec type and
// validation.
//
// MeshRateLimit makes each proxy limit, on its own, how many HTTP requests
// or TCP connections it accepts per interval (Envoy's local rate limit).
package meshratelimit

import "github.com/trellis-mesh/trellis/api/common"

// Spec is the spec of a MeshRateLimit policy (Kuma 2.14 shape). Sidecars
// limit inbound traffic (rules, or the deprecated from); builtin gateways
// limit traffic they route (to).
type Spec struct {
	// TargetRef selects the proxies that enforce the limits; absent means
	// the whole mesh, gateways included.
	TargetRef *common.TargetRef `json:"targetRef,omitempty"`
	// To configures limits on a gateway's routed traffic; only allowed when
	// TargetRef selects gateways.
	To []To `json:"to,omitempty"`
	// From configures inbound limits per group of clients. Deprecated in
	// Kuma 2.14 in favour of Rules.
	From []From `json:"from,omitempty"`
	// Rules configures limits on all inbound traffic. It cannot be combined
	// with To or From.
	Rules []Rule `json:"rules,omitempty"`
}

// To is one section for gateway traffic.
type To struct {
	// TargetRef selects the destinations; only kind Mesh is accepted.
	TargetRef common.TargetRef `json:"targetRef"`
	// Default holds the limits.
	Default Conf `json:"default,omitzero"`
}

// From is one inbound section.
type From struct {
	// TargetRef selects the clients; only kind Mesh is accepted.
	TargetRef common.TargetRef `json:"targetRef"`
	// Default holds the limits.
	Default Conf `json:"default,omitzero"`
}

// Rule is one inbound rule; it applies to all inbound traffic.
type Rule struct {
	// Default holds the limits.
	Default Conf `json:"default,omitzero"`
}

// Conf holds the rate limits.
type Conf struct {
	// Local configures limits each proxy enforces by itself; required.
	Local *Local `json:"local,omitempty"`
}

// Local holds HTTP and TCP limits; at least one is required.
type Local struct {
	// HTTP limits requests.
	HTTP *LocalHTTP `json:"http,omitempty"`
	// TCP limits connections.
	TCP *LocalTCP `json:"tcp,omitempty"`
}

// LocalHTTP limits HTTP requests.
type LocalHTTP struct {
	// Disabled turns the HTTP limit off (to override a broader policy).
	Disabled *bool `json:"disabled,omitempty"`
	// RequestRate is how many requests are allowed per interval.
	RequestRate *Rate `json:"requestRate,omitempty"`
	// OnRateLimit shapes the response to a limited request.
	OnRateLimit *OnRateLimit `json:"onRateLimit,omitempty"`
}

// LocalTCP limits TCP connections.
type LocalTCP struct {
	// Disabled turns the TCP limit off.
	Disabled *bool `json:"disabled,omitempty"`
	// ConnectionRate is how many connections are allowed per interval.
	ConnectionRate *Rate `json:"connectionRate,omitempty"`
}

// Rate is a token bucket: Num tokens per Interval.
type Rate struct {
	// Num is the number of requests or connections allowed; must be > 0.
	Num uint32 `json:"num"`
	// Interval is the refill period; it must be greater than 50ms.
	Interval common.Duration `json:"interval"`
}

// OnRateLimit shapes the response to a limited request.
type OnRateLimit struct {
	// Status is the response status (default 429).
	Status *uint32 `json:"status,omitempty"`
	// Headers are added to the response.
	Headers *HeaderModifier `json:"headers,omitempty"`
}

// HeaderModifier sets or appends headers.
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
