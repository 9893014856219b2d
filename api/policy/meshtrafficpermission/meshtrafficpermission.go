// Package meshtrafficpermission holds the MeshTrafficPermission policy: its
// spec type and validation.
//
// MeshTrafficPermission decides which clients may reach the selected
// proxies when mutual TLS is on; without any, traffic is denied.
package meshtrafficpermission

import "github.com/trellis-mesh/trellis/api/common"

// Spec is the spec of a MeshTrafficPermission policy (Kuma 2.14 shape). It
// only configures inbound traffic: from (by client targetRef) or rules (by
// client SPIFFE ID, for meshes with MeshIdentity).
type Spec struct {
	// TargetRef selects the proxies whose inbound traffic is checked;
	// absent means the whole mesh.
	TargetRef *common.TargetRef `json:"targetRef,omitempty"`
	// From gives an action per group of clients. Later items win over
	// earlier ones for clients they both match.
	From []From `json:"from,omitempty"`
	// Rules lists clients to allow or deny by identity. It cannot be
	// combined with From.
	Rules []Rule `json:"rules,omitempty"`
}

// From gives the action for one group of clients.
type From struct {
	// TargetRef selects the clients.
	TargetRef common.TargetRef `json:"targetRef"`
	// Default holds the action.
	Default Conf `json:"default,omitzero"`
}

// Conf holds the action applied to a group of clients.
type Conf struct {
	// Action is Allow, Deny or AllowWithShadowDeny; it is required.
	Action *Action `json:"action,omitempty"`
}

// Action is what happens to requests from a group of clients.
type Action string

// Actions.
const (
	// Allow lets the requests pass.
	Allow Action = "Allow"
	// Deny rejects the requests.
	Deny Action = "Deny"
	// AllowWithShadowDeny lets the requests pass but logs them as denied,
	// to try a stricter policy safely.
	AllowWithShadowDeny Action = "AllowWithShadowDeny"
)

// Rule holds lists of client identities to allow or deny.
type Rule struct {
	// Default holds the lists.
	Default RuleConf `json:"default"`
}

// RuleConf lists clients by identity. A request matching any Deny entry is
// denied; else one matching Allow or AllowWithShadowDeny is allowed; else
// it is denied.
type RuleConf struct {
	// Deny lists clients that are always denied.
	Deny []Match `json:"deny,omitempty"`
	// AllowWithShadowDeny lists clients that are allowed but logged as if
	// denied.
	AllowWithShadowDeny []Match `json:"allowWithShadowDeny,omitempty"`
	// Allow lists clients that are allowed.
	Allow []Match `json:"allow,omitempty"`
}

// Match selects clients by their identity.
type Match struct {
	// SpiffeID matches the client's SPIFFE ID; it is required.
	SpiffeID *SpiffeIDMatch `json:"spiffeID,omitempty"`
}

// SpiffeIDMatch compares a client's SPIFFE ID with Value.
type SpiffeIDMatch struct {
	// Type is Exact or Prefix.
	Type SpiffeIDMatchType `json:"type"`
	// Value is the SPIFFE ID or prefix, e.g.
	// "spiffe://my-mesh.us-east-2.mesh.local/ns/legacy".
	Value string `json:"value"`
}

// SpiffeIDMatchType is how a SPIFFE ID is compared.
type SpiffeIDMatchType string

// SPIFFE ID match types.
const (
	Exact  SpiffeIDMatchType = "Exact"
	Prefix SpiffeIDMatchType = "Prefix"
)
