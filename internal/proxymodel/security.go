package proxymodel

// Security parts of the proxy model (the zero-trust issue). The CA
// package fills MTLS; the policy package fills Inbound.Permissions; the
// xDS builder turns both into TLS transport sockets, SDS secrets and RBAC
// filters (docs/xds-contract.md, "mTLS, identity and authorization").

// mTLS modes.
const (
	MTLSStrict     = "STRICT"
	MTLSPermissive = "PERMISSIVE"
)

// MTLS says how a proxy's traffic is secured; nil means plaintext.
type MTLS struct {
	// Mode is MTLSStrict or MTLSPermissive.
	Mode string
	// TrustDomain is the mesh name: identities are spiffe://<mesh>/<service>.
	TrustDomain string
	// Identities are the proxy's workload certificates, one per distinct
	// kuma.io/service, in the order of ServiceNames.
	Identities []Identity
	// TrustedCAs is the PEM bundle of every CA of the mesh.
	TrustedCAs []byte
}

// Identity is one workload certificate.
type Identity struct {
	Service string
	// SpiffeID is spiffe://<mesh>/<service>.
	SpiffeID string
	CertPEM  []byte
	KeyPEM   []byte
}

// SpiffeID returns the identity of a service in a mesh.
func SpiffeID(mesh, service string) string { return "spiffe://" + mesh + "/" + service }

// Permissions is the merged MeshTrafficPermission of one inbound: rules
// checked in order, the first whose principal matches the client decides.
// A client no rule matches is denied.
type Permissions struct {
	Rules []PermissionRule
}

// Permission actions.
const (
	ActionAllow               = "Allow"
	ActionDeny                = "Deny"
	ActionAllowWithShadowDeny = "AllowWithShadowDeny"
)

// PermissionRule gives the action for the clients its principal matches.
type PermissionRule struct {
	Principal Principal
	// Action is ActionAllow, ActionDeny or ActionAllowWithShadowDeny.
	Action string
	// Origins name the policies the rule comes from, for inspection.
	Origins []string
}

// Principal matches a client by its SPIFFE ID. Exactly one field is set.
type Principal struct {
	// Any matches every client of the mesh.
	Any bool `json:"any,omitempty"`
	// Exact matches one SPIFFE ID.
	Exact string `json:"exact,omitempty"`
	// Prefix matches SPIFFE IDs that start with it.
	Prefix string `json:"prefix,omitempty"`
}
