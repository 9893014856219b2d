// Package meshfaultinjection holds the MeshFaultInjection policy: its spec
// type and validation.
//
// MeshFaultInjection injects HTTP faults (aborts, delays, bandwidth limits)
// into a share of requests, to test how services cope with failures.
package meshfaultinjection

import "github.com/trellis-mesh/trellis/api/common"

// Spec is the spec of a MeshFaultInjection policy (Kuma 2.14 shape).
// Sidecars inject faults into inbound traffic (rules, or the deprecated
// from); builtin gateways into traffic they route (to).
type Spec struct {
	// TargetRef selects the proxies that inject the faults; absent means
	// the whole mesh, gateways included.
	TargetRef *common.TargetRef `json:"targetRef,omitempty"`
	// To configures faults on a gateway's routed traffic; only allowed when
	// TargetRef selects gateways.
	To []To `json:"to,omitempty"`
	// From configures faults per group of clients. Deprecated in Kuma 2.14
	// in favour of Rules.
	From []From `json:"from,omitempty"`
	// Rules configures faults on all inbound traffic. It cannot be combined
	// with To or From.
	Rules []Rule `json:"rules,omitempty"`
}

// To is one section for gateway traffic.
type To struct {
	// TargetRef selects the destinations; only kind Mesh is accepted.
	TargetRef common.TargetRef `json:"targetRef"`
	// Default holds the faults.
	Default Conf `json:"default,omitzero"`
}

// From is one inbound section.
type From struct {
	// TargetRef selects the clients.
	TargetRef common.TargetRef `json:"targetRef"`
	// Default holds the faults.
	Default Conf `json:"default,omitzero"`
}

// Rule is one inbound rule; it applies to all inbound traffic.
type Rule struct {
	// Default holds the faults.
	Default Conf `json:"default,omitzero"`
}

// Conf lists the faults to inject.
type Conf struct {
	// HTTP lists HTTP faults, applied in order: each one's percentage
	// applies to the requests the earlier ones let through.
	HTTP []FaultInjectionConf `json:"http,omitempty"`
}

// FaultInjectionConf is one fault; any of its parts may be set.
type FaultInjectionConf struct {
	// Abort answers requests with a status code instead of forwarding them.
	Abort *AbortConf `json:"abort,omitempty"`
	// Delay holds responses back.
	Delay *DelayConf `json:"delay,omitempty"`
	// ResponseBandwidth slows responses down.
	ResponseBandwidth *ResponseBandwidthConf `json:"responseBandwidth,omitempty"`
}

// AbortConf aborts a share of requests.
type AbortConf struct {
	// HTTPStatus is the status returned (100-599).
	HTTPStatus int32 `json:"httpStatus"`
	// Percentage of requests aborted (0-100): an integer or a decimal
	// string such as "2.5".
	Percentage *common.IntOrString `json:"percentage,omitempty"`
}

// DelayConf delays a share of responses.
type DelayConf struct {
	// Value is how long responses are held back.
	Value common.Duration `json:"value"`
	// Percentage of requests delayed (0-100).
	Percentage *common.IntOrString `json:"percentage,omitempty"`
}

// ResponseBandwidthConf limits the bandwidth of a share of responses.
type ResponseBandwidthConf struct {
	// Limit is a rate such as "10kbps", "50Mbps" or "1Gbps".
	Limit string `json:"limit"`
	// Percentage of requests limited (0-100).
	Percentage *common.IntOrString `json:"percentage,omitempty"`
}
