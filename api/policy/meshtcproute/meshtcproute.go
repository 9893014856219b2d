// Package meshtcproute holds the MeshTCPRoute policy: its spec type and
// validation, in Kuma 2.14's shape.
//
// A MeshTCPRoute sends the TCP connections that the proxies of its top-level
// targetRef open towards each to[].targetRef destination to other backends,
// split by weight. A MeshHTTPRoute for the same destination takes priority.
package meshtcproute

import (
	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

// Spec is the spec of a MeshTCPRoute policy.
type Spec struct {
	// TargetRef selects the proxies whose outbound connections are routed;
	// absent means the whole mesh. A MeshGateway ref routes the gateway's
	// listeners instead.
	TargetRef *common.TargetRef `json:"targetRef,omitempty"`
	// To lists destinations and the rule for connections to each.
	To []To `json:"to,omitempty"`
}

// To is the routing rule for one destination.
type To struct {
	// TargetRef is the destination: a MeshService (or MeshExternalService,
	// MeshMultiZoneService), or the whole Mesh for gateway routes.
	TargetRef common.TargetRef `json:"targetRef"`
	// Rules holds at most one rule: TCP has nothing to match on, so a
	// second rule could never be chosen.
	Rules []Rule `json:"rules,omitempty"`
}

// Rule says where connections go.
type Rule struct {
	// Default is merged with the rules of other policies for the same
	// destination.
	Default RuleConf `json:"default"`
}

// RuleConf lists the backends of a rule.
type RuleConf struct {
	// BackendRefs are the backends connections are split across by weight;
	// at least one is required.
	BackendRefs []common.BackendRef `json:"backendRefs"`
}

// Kinds accepted by each targetRef of a MeshTCPRoute, as Kuma 2.14 accepts
// them for policies applied through the Universal API.
var (
	topRefs = common.RefRules{Allowed: []common.TargetRefKind{
		common.Mesh, common.MeshSubset, common.MeshService, common.MeshServiceSubset,
		common.MeshGateway, common.Dataplane,
	}}
	toRefs = common.RefRules{Allowed: []common.TargetRefKind{
		common.MeshService, common.MeshExternalService, common.MeshMultiZoneService,
	}}
	gatewayToRefs = common.RefRules{Allowed: []common.TargetRefKind{common.Mesh}}
	backendRefs   = common.BackendRefRules{Allowed: []common.TargetRefKind{
		common.MeshService, common.MeshServiceSubset, common.MeshExternalService, common.MeshMultiZoneService,
	}}
)

// Validate checks the spec as Kuma 2.14 does; paths are relative to the
// spec.
func (s *Spec) Validate() error {
	var errs validate.Errors
	root := validate.Root()
	gateway := false
	if s.TargetRef != nil {
		common.ValidateTargetRefListenerTags(&errs, root.Field("targetRef"), *s.TargetRef, topRefs)
		gateway = s.TargetRef.Kind == common.MeshGateway
	}
	for i, to := range s.To {
		p := root.Field("to").Index(i)
		if gateway {
			common.ValidateTargetRef(&errs, p.Field("targetRef"), to.TargetRef, gatewayToRefs)
		} else {
			common.ValidateTargetRef(&errs, p.Field("targetRef"), to.TargetRef, toRefs)
		}
		if len(to.Rules) > 1 {
			errs.Add(p.Field("rules"), "must have at most 1 element: TCP routes cannot match, so only one rule applies")
		}
		for j, rule := range to.Rules {
			refs := p.Field("rules").Index(j).Field("default").Field("backendRefs")
			if len(rule.Default.BackendRefs) == 0 {
				errs.Add(refs, "must be defined")
				continue
			}
			common.ValidateBackendRefs(&errs, refs, rule.Default.BackendRefs, backendRefs)
		}
	}
	return errs.Err()
}
