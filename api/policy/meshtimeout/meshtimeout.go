// Package meshtimeout holds the MeshTimeout policy: its spec type, its
// validation and the defaults every new mesh gets.
//
// MeshTimeout bounds how long proxies wait on connections, requests and
// streams, on outbound traffic (to), inbound traffic (rules, or the
// deprecated from) and gateways.
package meshtimeout

import "github.com/trellis-mesh/trellis/api/common"

// Spec is the spec of a MeshTimeout policy (Kuma 2.14 shape).
type Spec struct {
	// TargetRef selects the proxies the policy configures; absent means the
	// whole mesh.
	TargetRef *common.TargetRef `json:"targetRef,omitempty"`
	// To configures timeouts on traffic the selected proxies send, per
	// group of destinations.
	To []To `json:"to,omitempty"`
	// From configures timeouts on traffic the selected proxies receive, per
	// group of clients. Deprecated in Kuma 2.14 in favour of Rules.
	From []From `json:"from,omitempty"`
	// Rules configures timeouts on all traffic the selected proxies
	// receive. It cannot be combined with To or From.
	Rules []Rule `json:"rules,omitempty"`
}

// To is one outbound section: destinations and their timeouts.
type To struct {
	// TargetRef selects the destinations.
	TargetRef common.TargetRef `json:"targetRef"`
	// Default holds the timeouts for those destinations.
	Default Conf `json:"default,omitzero"`
}

// From is one inbound section: clients and their timeouts.
type From struct {
	// TargetRef selects the clients; only kind Mesh is accepted.
	TargetRef common.TargetRef `json:"targetRef"`
	// Default holds the timeouts for traffic from those clients.
	Default Conf `json:"default,omitzero"`
}

// Rule is one inbound rule; it applies to all inbound traffic.
type Rule struct {
	// Default holds the inbound timeouts.
	Default Conf `json:"default,omitzero"`
}

// Conf is the set of timeouts a section configures. Every field is
// optional; a zero duration disables the timeout where Envoy allows it.
type Conf struct {
	// ConnectionTimeout is how long to wait for a TCP connection to be
	// established; it must be greater than zero.
	ConnectionTimeout *common.Duration `json:"connectionTimeout,omitempty"`
	// IdleTimeout closes a connection after this long without traffic (for
	// HTTP: without active streams).
	IdleTimeout *common.Duration `json:"idleTimeout,omitempty"`
	// HTTP holds the timeouts that apply only to HTTP traffic.
	HTTP *HTTP `json:"http,omitempty"`
}

// HTTP holds HTTP-only timeouts.
type HTTP struct {
	// RequestTimeout is how long to wait for the whole response once the
	// request has been sent.
	RequestTimeout *common.Duration `json:"requestTimeout,omitempty"`
	// StreamIdleTimeout resets a stream after this long without activity.
	StreamIdleTimeout *common.Duration `json:"streamIdleTimeout,omitempty"`
	// MaxStreamDuration caps the lifetime of a stream whatever its activity.
	MaxStreamDuration *common.Duration `json:"maxStreamDuration,omitempty"`
	// MaxConnectionDuration drains a connection this long after it was
	// established.
	MaxConnectionDuration *common.Duration `json:"maxConnectionDuration,omitempty"`
	// RequestHeadersTimeout is how long to wait for the request headers
	// once their first byte arrived.
	RequestHeadersTimeout *common.Duration `json:"requestHeadersTimeout,omitempty"`
}
