package common

import (
	"slices"
	"time"

	"github.com/trellis-mesh/trellis/api/validate"
)

// ValidatePositiveDuration records a violation when d (if set) is not a
// valid duration greater than zero, as Kuma requires of intervals and
// connect timeouts.
func ValidatePositiveDuration(errs *validate.Errors, path validate.Path, d *Duration) {
	ValidateDurationAbove(errs, path, d, 0)
}

// ValidateDurationAbove records a violation when d (if set) is not a valid
// duration strictly greater than min.
func ValidateDurationAbove(errs *validate.Errors, path validate.Path, d *Duration, min time.Duration) {
	if d == nil {
		return
	}
	var sub validate.Errors
	v := validate.Duration(&sub, path, string(*d))
	if !sub.Empty() {
		errs.Merge(sub)
		return
	}
	if v <= min {
		errs.Addf(path, "must be greater than %s", min)
	}
}

// ValidatePositiveUint32 records a violation when n is set to 0.
func ValidatePositiveUint32(errs *validate.Errors, path validate.Path, n *uint32) {
	if n != nil && *n == 0 {
		errs.Add(path, "must be greater than 0")
	}
}

// ValidatePositiveInt32 records a violation when n is set to 0 or less.
func ValidatePositiveInt32(errs *validate.Errors, path validate.Path, n *int32) {
	if n != nil && *n <= 0 {
		errs.Add(path, "must be greater than 0")
	}
}

// ValidateHTTPStatus records a violation when code is not an HTTP status
// code (100-599).
func ValidateHTTPStatus(errs *validate.Errors, path validate.Path, code int32) {
	if code < 100 || code > 599 {
		errs.Add(path, "must be a valid HTTP status code in the range [100, 599]")
	}
}

// IncludesGateways reports whether a policy with top-level targetRef ref
// (nil means the whole mesh) can select builtin gateways: a MeshGateway or
// MeshHTTPRoute, or Mesh/MeshSubset unless proxyTypes leaves Gateway out.
// Kuma 2.14 limits such policies to `to` sections for their
// gateway-facing configuration.
func IncludesGateways(ref *TargetRef) bool {
	if ref == nil {
		return true
	}
	switch ref.Kind {
	case MeshGateway, MeshHTTPRoute:
		return true
	case Mesh, MeshSubset:
		return len(ref.ProxyTypes) == 0 || slices.Contains(ref.ProxyTypes, Gateway)
	}
	return false
}

// TopKind returns the kind of a top-level targetRef; an absent one selects
// the whole mesh.
func TopKind(ref *TargetRef) TargetRefKind {
	if ref == nil {
		return Mesh
	}
	return ref.Kind
}

// ValidateTopTargetRef checks an optional top-level targetRef at
// path "targetRef" against allowed; a MeshGateway ref may carry listener
// tags. inbound tells whether the policy configures inbound traffic (from or
// rules): Kuma accepts a Dataplane sectionName, which names one inbound,
// only then.
func ValidateTopTargetRef(errs *validate.Errors, ref *TargetRef, inbound bool, allowed ...TargetRefKind) {
	if ref == nil {
		return
	}
	path := validate.Root().Field("targetRef")
	ValidateTargetRefListenerTags(errs, path, *ref, RefRules{Allowed: allowed})
	if ref.SectionName != "" && ref.Kind == Dataplane && !inbound {
		errs.Add(path.Field("sectionName"), "can only be used with inbound policies (from or rules)")
	}
}
