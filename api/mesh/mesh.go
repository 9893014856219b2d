package mesh

import (
	"github.com/trellis-mesh/trellis/api/validate"
)

// Mesh is the Mesh resource: one isolated set of services, with its own
// identity (mTLS backend), defaults and constraints.
type Mesh struct {
	// MTLS configures the certificate authority and the mTLS mode.
	MTLS *MTLS `json:"mtls,omitempty"`
	// Tracing lists legacy tracing backends (superseded by MeshTrace).
	Tracing *Tracing `json:"tracing,omitempty"`
	// Logging lists legacy access-log backends (superseded by MeshAccessLog).
	Logging *Logging `json:"logging,omitempty"`
	// Metrics lists legacy metrics backends (superseded by MeshMetric).
	Metrics *Metrics `json:"metrics,omitempty"`
	// Networking holds mesh-wide networking settings.
	Networking *MeshNetworking `json:"networking,omitempty"`
	// Routing holds mesh-wide routing settings.
	Routing *Routing `json:"routing,omitempty"`
	// Constraints limits which data plane proxies may join the mesh.
	Constraints *Constraints `json:"constraints,omitempty"`
	// SkipCreatingInitialPolicies lists policy kinds (or "*" for all) that
	// the control plane must not create when the mesh is created.
	SkipCreatingInitialPolicies []string `json:"skipCreatingInitialPolicies,omitempty"`
	// MeshServices says whether MeshService resources are generated and used.
	MeshServices *MeshServices `json:"meshServices,omitempty"`
}

// MeshNetworking holds mesh-wide networking settings.
type MeshNetworking struct {
	// Outbound holds settings for traffic leaving the proxies.
	Outbound *MeshOutbound `json:"outbound,omitempty"`
}

// MeshOutbound holds settings for outbound traffic.
type MeshOutbound struct {
	// Passthrough lets traffic to destinations outside the mesh pass
	// through the proxy (default true).
	Passthrough *bool `json:"passthrough,omitempty"`
}

// Routing holds mesh-wide routing settings.
type Routing struct {
	// LocalityAwareLoadBalancing prefers endpoints in the local zone.
	LocalityAwareLoadBalancing *bool `json:"localityAwareLoadBalancing,omitempty"`
	// ZoneEgress routes cross-zone and external traffic through ZoneEgress;
	// it requires mTLS.
	ZoneEgress *bool `json:"zoneEgress,omitempty"`
	// DefaultForbidMeshExternalServiceAccess blocks traffic to
	// MeshExternalServices unless a policy allows it.
	DefaultForbidMeshExternalServiceAccess *bool `json:"defaultForbidMeshExternalServiceAccess,omitempty"`
}

// Constraints limits the entities of the mesh.
type Constraints struct {
	// DataplaneProxy says which proxies may join.
	DataplaneProxy *DataplaneProxyConstraints `json:"dataplaneProxy,omitempty"`
}

// DataplaneProxyConstraints is the membership rule for data plane proxies:
// a proxy must match at least one requirement (when any are given) and no
// restriction.
type DataplaneProxyConstraints struct {
	Requirements []DataplaneProxyRule `json:"requirements,omitempty"`
	Restrictions []DataplaneProxyRule `json:"restrictions,omitempty"`
}

// DataplaneProxyRule matches proxies by tags; a value of "*" matches any
// non-empty value.
type DataplaneProxyRule struct {
	Tags map[string]string `json:"tags,omitempty"`
}

// MeshServicesMode says how MeshService resources are used.
type MeshServicesMode string

// MeshServices modes.
const (
	MeshServicesDisabled          MeshServicesMode = "Disabled"
	MeshServicesEverywhere        MeshServicesMode = "Everywhere"
	MeshServicesReachableBackends MeshServicesMode = "ReachableBackends"
	MeshServicesExclusive         MeshServicesMode = "Exclusive"
)

// MeshServices configures MeshService generation.
type MeshServices struct {
	Mode MeshServicesMode `json:"mode,omitempty"`
}

// SkipsInitialPolicy reports whether the mesh asks not to create the
// default policy of the given kind ("MeshTimeout", ...) on creation.
func (x *Mesh) SkipsInitialPolicy(kind string) bool {
	if x == nil {
		return false
	}
	for _, k := range x.SkipCreatingInitialPolicies {
		if k == "*" || k == kind {
			return true
		}
	}
	return false
}

// MTLSEnabled reports whether mTLS is on (an enabled backend is named).
func (x *Mesh) MTLSEnabled() bool {
	return x != nil && x.MTLS != nil && x.MTLS.EnabledBackend != ""
}

// EnabledMTLSBackend returns the enabled certificate authority backend, or
// nil when mTLS is off.
func (x *Mesh) EnabledMTLSBackend() *CertificateAuthorityBackend {
	if !x.MTLSEnabled() {
		return nil
	}
	for i := range x.MTLS.Backends {
		if x.MTLS.Backends[i].Name == x.MTLS.EnabledBackend {
			return &x.MTLS.Backends[i]
		}
	}
	return nil
}

// MTLSMode returns the mode of the enabled backend (STRICT when unset), or
// "" when mTLS is off.
func (x *Mesh) MTLSMode() MTLSMode {
	b := x.EnabledMTLSBackend()
	switch {
	case b == nil:
		return ""
	case b.Mode == "":
		return ModeStrict
	}
	return b.Mode
}

// PassthroughEnabled reports whether outbound passthrough is on (default true).
func (x *Mesh) PassthroughEnabled() bool {
	if x == nil || x.Networking == nil || x.Networking.Outbound == nil || x.Networking.Outbound.Passthrough == nil {
		return true
	}
	return *x.Networking.Outbound.Passthrough
}

// ZoneEgressEnabled reports whether traffic leaves the zone through ZoneEgress.
func (x *Mesh) ZoneEgressEnabled() bool {
	return x != nil && x.Routing != nil && isTrue(x.Routing.ZoneEgress)
}

// LocalityAwareLoadBalancing reports whether locality-aware load balancing is on.
func (x *Mesh) LocalityAwareLoadBalancing() bool {
	return x != nil && x.Routing != nil && isTrue(x.Routing.LocalityAwareLoadBalancing)
}

// MeshServicesMode returns the MeshServices mode (Disabled when unset).
func (x *Mesh) MeshServicesMode() MeshServicesMode {
	if x == nil || x.MeshServices == nil || x.MeshServices.Mode == "" {
		return MeshServicesDisabled
	}
	return x.MeshServices.Mode
}

// Validate checks every field, as Kuma 2.14 does.
func (x *Mesh) Validate() error {
	var errs validate.Errors
	root := validate.Root()
	if x.MTLS != nil {
		x.MTLS.validate(&errs, root.Field("mtls"))
	}
	if x.Logging != nil {
		x.Logging.validate(&errs, root.Field("logging"))
	}
	if x.Tracing != nil {
		x.Tracing.validate(&errs, root.Field("tracing"))
	}
	if x.Metrics != nil {
		x.Metrics.validate(&errs, root.Field("metrics"))
	}
	if x.Constraints != nil && x.Constraints.DataplaneProxy != nil {
		x.Constraints.DataplaneProxy.validate(&errs, root.Field("constraints").Field("dataplaneProxy"))
	}
	if x.ZoneEgressEnabled() && !x.MTLSEnabled() {
		errs.Add(root.Field("mtls"), "has to be set when zoneEgress enabled")
	}
	validateNonEmptyList(&errs, root.Field("skipCreatingInitialPolicies"), x.SkipCreatingInitialPolicies)
	if x.MeshServices != nil && x.MeshServices.Mode != "" {
		validate.Enum(&errs, root.Field("meshServices").Field("mode"), string(x.MeshServices.Mode),
			string(MeshServicesDisabled), string(MeshServicesEverywhere), string(MeshServicesReachableBackends), string(MeshServicesExclusive))
	}
	return errs.Err()
}

func (c *DataplaneProxyConstraints) validate(errs *validate.Errors, path validate.Path) {
	for i, r := range c.Requirements {
		validateTags(errs, path.Field("requirements").Index(i).Field("tags"), r.Tags, tagRules{atLeastOne: true, selector: true})
	}
	for i, r := range c.Restrictions {
		validateTags(errs, path.Field("restrictions").Index(i).Field("tags"), r.Tags, tagRules{atLeastOne: true, selector: true})
	}
}

// validator is what the resource registry needs of a spec.
type validator interface{ Validate() error }

var (
	_ validator = (*Mesh)(nil)
	_ validator = (*Dataplane)(nil)
	_ validator = (*ZoneIngress)(nil)
	_ validator = (*ZoneEgress)(nil)
	_ validator = (*MeshGateway)(nil)
)
