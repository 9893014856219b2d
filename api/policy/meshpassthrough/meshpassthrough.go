// Package meshpassthrough holds the MeshPassthrough policy: its spec type
// and validation, in Kuma 2.14's shape.
//
// A MeshPassthrough decides which destinations outside the mesh the
// transparent proxies of its top-level targetRef let traffic through to:
// all, none, or only the matched domains, IPs and CIDR ranges. It has a
// single default section, no to/from/rules.
package meshpassthrough

import (
	"github.com/trellis-mesh/trellis/api/common"
)

// Spec is the spec of a MeshPassthrough policy.
type Spec struct {
	// TargetRef selects the proxies configured; absent means the whole
	// mesh.
	TargetRef *common.TargetRef `json:"targetRef,omitempty"`
	// Default is the passthrough configuration.
	Default *Conf `json:"default,omitempty"`
}

// Passthrough modes.
const (
	// ModeAll lets all traffic to unknown destinations through.
	ModeAll = "All"
	// ModeMatched lets through only traffic that fits AppendMatch.
	ModeMatched = "Matched"
	// ModeNone blocks traffic to unknown destinations (the default).
	ModeNone = "None"
)

// Conf is the passthrough configuration.
type Conf struct {
	// PassthroughMode is All, Matched or None (the default).
	PassthroughMode *string `json:"passthroughMode,omitempty"`
	// AppendMatch lists the destinations let through in Matched mode.
	AppendMatch []Match `json:"appendMatch,omitempty"`
}

// Match types.
const (
	MatchDomain = "Domain"
	MatchIP     = "IP"
	MatchCIDR   = "CIDR"
)

// Match is one destination outside the mesh.
type Match struct {
	// Type is Domain, IP or CIDR.
	Type string `json:"type,omitempty"`
	// Value is the domain (optionally "*."-prefixed), address or range.
	Value string `json:"value,omitempty"`
	// Port limits the match to one destination port; absent means all.
	Port *uint32 `json:"port,omitempty"`
	// Protocol of the traffic: tcp (the default), tls, grpc, http or
	// http2. Domains need tls or an HTTP protocol, since plain TCP carries
	// no host name.
	Protocol string `json:"protocol,omitempty"`
}
