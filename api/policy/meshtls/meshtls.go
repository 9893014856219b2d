// Package meshtls holds the MeshTLS policy: its spec type and validation,
// in Kuma 2.14's shape.
//
// A MeshTLS sets how the inbound listeners of the proxies its top-level
// targetRef selects handle mutual TLS: Strict or Permissive (plaintext also
// accepted), and, mesh-wide only, the TLS versions and cipher suites. The
// configuration sits in rules[] or, deprecated since Kuma 2.10, in from[].
package meshtls

import (
	"github.com/trellis-mesh/trellis/api/common"
)

// Spec is the spec of a MeshTLS policy.
type Spec struct {
	// TargetRef selects the proxies configured; absent means the whole
	// mesh.
	TargetRef *common.TargetRef `json:"targetRef,omitempty"`
	// From configures inbound TLS per client group (only Mesh). Deprecated
	// by Kuma in favour of Rules; it cannot be combined with Rules.
	From []From `json:"from,omitempty"`
	// Rules configures inbound TLS for all clients.
	Rules []Rule `json:"rules,omitempty"`
}

// From is the TLS configuration for traffic from a group of clients.
type From struct {
	// TargetRef is the group of clients: only Mesh is accepted.
	TargetRef common.TargetRef `json:"targetRef"`
	// Default is the configuration.
	Default *Conf `json:"default,omitempty"`
}

// Rule is the TLS configuration for inbound traffic.
type Rule struct {
	// Default is the configuration.
	Default *Conf `json:"default,omitempty"`
}

// Mode values.
const (
	// ModeStrict accepts only mutual TLS.
	ModeStrict = "Strict"
	// ModePermissive also accepts plaintext on inbound listeners.
	ModePermissive = "Permissive"
)

// Conf is the TLS configuration.
type Conf struct {
	// TlsVersion bounds the TLS versions; only with a Mesh top-level
	// targetRef.
	TlsVersion *Version `json:"tlsVersion,omitempty"`
	// TlsCiphers lists the allowed cipher suites (TLS 1.2 and below); only
	// with a Mesh top-level targetRef.
	TlsCiphers []string `json:"tlsCiphers,omitempty"`
	// Mode is Strict or Permissive.
	Mode *string `json:"mode,omitempty"`
}

// Version bounds the TLS versions, each one of TLSAuto (the default),
// TLS10, TLS11, TLS12, TLS13.
type Version struct {
	// Min is the lowest version accepted.
	Min *string `json:"min,omitempty"`
	// Max is the highest version accepted.
	Max *string `json:"max,omitempty"`
}
