package common

import (
	"github.com/trellis-mesh/trellis/api/validate"
)

// ValidateTargetRefListenerTags checks a top-level targetRef like
// ValidateTargetRef, except that a MeshGateway ref may carry tags: Kuma's
// route and observability policies use them to pick gateway listeners
// ("port: http-8080"). Tag names and values must not be empty.
func ValidateTargetRefListenerTags(errs *validate.Errors, path validate.Path, ref TargetRef, rules RefRules) {
	if ref.Kind != MeshGateway || ref.Tags == nil {
		ValidateTargetRef(errs, path, ref, rules)
		return
	}
	tags := ref.Tags
	ref.Tags = nil
	ValidateTargetRef(errs, path, ref, rules)
	if containsKind(rules.Allowed, MeshGateway) {
		validateTags(errs, path.Field("tags"), tags)
	}
}

// BackendRefRules says which kinds a list of backendRefs accepts.
type BackendRefRules struct {
	// Allowed lists the kinds a backendRef may name.
	Allowed []TargetRefKind
}

// ValidateBackendRefs checks each backendRef: its kind and the fields that
// kind takes, a port in range, and a port for MeshMultiZoneService (which
// has no default port to route to).
func ValidateBackendRefs(errs *validate.Errors, path validate.Path, refs []BackendRef, rules BackendRefRules) {
	for i, ref := range refs {
		p := path.Index(i)
		ValidateTargetRef(errs, p, ref.TargetRef, RefRules{Allowed: rules.Allowed})
		if ref.Port != nil {
			validate.Port(errs, p.Field("port"), *ref.Port)
		} else if ref.Kind == MeshMultiZoneService {
			errs.Add(p.Field("port"), "must be defined with kind MeshMultiZoneService")
		}
	}
}
