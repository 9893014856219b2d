package common

import (
	"github.com/trellis-mesh/trellis/api/validate"
)

// MeshOpenTelemetryBackend is the only kind a BackendResourceRef may name.
const MeshOpenTelemetryBackend = "MeshOpenTelemetryBackend"

// BackendResourceRef points an observability policy (MeshAccessLog,
// MeshMetric, MeshTrace) at a shared MeshOpenTelemetryBackend resource of
// the same mesh, by name or by labels. Kuma 2.14 introduced it as the
// replacement of the inline openTelemetry.endpoint.
type BackendResourceRef struct {
	// Kind is the kind of the referenced resource: MeshOpenTelemetryBackend.
	Kind string `json:"kind"`
	// Name picks the backend by its resource name.
	Name string `json:"name,omitempty"`
	// Labels picks the backend by labels; when several match, the oldest
	// one wins.
	Labels map[string]string `json:"labels,omitempty"`
}

// ValidateBackendResourceRef records violations when ref has a kind other
// than MeshOpenTelemetryBackend or does not set exactly one of name and
// labels.
func ValidateBackendResourceRef(errs *validate.Errors, path validate.Path, ref *BackendResourceRef) {
	if ref == nil {
		return
	}
	if ref.Kind == "" {
		errs.Add(path.Field("kind"), "must be defined")
	} else if ref.Kind != MeshOpenTelemetryBackend {
		errs.Addf(path.Field("kind"), "unknown value %q: must be %s", ref.Kind, MeshOpenTelemetryBackend)
	}
	switch {
	case ref.Name == "" && len(ref.Labels) == 0:
		errs.Add(path, "must have exactly one defined: name, labels")
	case ref.Name != "" && len(ref.Labels) > 0:
		errs.Add(path, "must have only one defined: name, labels")
	}
	for _, k := range validate.SortedKeys(ref.Labels) {
		if ref.Labels[k] == "" {
			errs.Add(path.Field("labels").Key(k), "label value must not be empty")
		}
	}
}

// ValidateOtelEndpointOrRef records a violation at path (the openTelemetry
// object) unless exactly one of endpoint and backendRef is set, and checks
// backendRef when it is. It reports whether endpoint is the one set, so that
// the caller can apply its own endpoint syntax rules.
func ValidateOtelEndpointOrRef(errs *validate.Errors, path validate.Path, endpoint string, ref *BackendResourceRef) bool {
	switch {
	case endpoint != "" && ref != nil:
		errs.Add(path, "openTelemetry must have only one defined: endpoint, backendRef")
		return false
	case endpoint == "" && ref == nil:
		errs.Add(path, "openTelemetry must have exactly one defined: endpoint, backendRef")
		return false
	case ref != nil:
		ValidateBackendResourceRef(errs, path.Field("backendRef"), ref)
		return false
	}
	return true
}
