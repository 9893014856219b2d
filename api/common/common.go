// Package common holds the building blocks that Kuma-style policies share:
// targetRefs, durations and the validation of both.
package common

import (
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/api/validate"
)

// TargetRefKind names what a targetRef selects.
type TargetRefKind string

// The targetRef kinds of Kuma 2.14.
const (
	Mesh                 TargetRefKind = "Mesh"
	Dataplane            TargetRefKind = "Dataplane"
	MeshSubset           TargetRefKind = "MeshSubset"
	MeshGateway          TargetRefKind = "MeshGateway"
	MeshService          TargetRefKind = "MeshService"
	MeshServiceSubset    TargetRefKind = "MeshServiceSubset"
	MeshHTTPRoute        TargetRefKind = "MeshHTTPRoute"
	MeshExternalService  TargetRefKind = "MeshExternalService"
	MeshMultiZoneService TargetRefKind = "MeshMultiZoneService"
)

// specificity orders kinds from least to most specific, as policy merging
// sorts them (DESIGN.md §4).
var specificity = map[TargetRefKind]int{
	Mesh:                 1,
	Dataplane:            2,
	MeshSubset:           3,
	MeshGateway:          4,
	MeshService:          5,
	MeshExternalService:  6,
	MeshMultiZoneService: 7,
	MeshServiceSubset:    8,
	MeshHTTPRoute:        9,
}

// Compare orders k against o by specificity: negative when k is less
// specific than o.
func (k TargetRefKind) Compare(o TargetRefKind) int { return specificity[k] - specificity[o] }

// ProxyType is a kind of data plane a policy may be limited to.
type ProxyType string

// Proxy types.
const (
	Sidecar ProxyType = "Sidecar"
	Gateway ProxyType = "Gateway"
)

// TargetRef selects what a policy (or one of its sections) applies to.
type TargetRef struct {
	Kind        TargetRefKind     `json:"kind"`
	Name        string            `json:"name,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Mesh        string            `json:"mesh,omitempty"`
	SectionName string            `json:"sectionName,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	ProxyTypes  []ProxyType       `json:"proxyTypes,omitempty"`
}

// BackendRef is a targetRef with a weight, used by routes to pick backends.
type BackendRef struct {
	TargetRef `json:",inline"`
	Weight    *uint32 `json:"weight,omitempty"`
	Port      *uint32 `json:"port,omitempty"`
}

// Duration is a Go duration string such as "10s" or "1m30s", kept as the
// user wrote it so that what is applied reads back the same.
type Duration string

// Parse returns the duration value; call it only on validated specs.
func (d Duration) Parse() time.Duration {
	v, _ := time.ParseDuration(string(d))
	return v
}

// ValidateDuration records a violation when d (if set) is not a valid,
// non-negative duration.
func ValidateDuration(errs *validate.Errors, path validate.Path, d *Duration) {
	if d == nil {
		return
	}
	validate.Duration(errs, path, string(*d))
}

// RefRules says which targetRef kinds a section of a policy accepts.
type RefRules struct {
	// Allowed lists the kinds accepted; anything else is a violation.
	Allowed []TargetRefKind
}

// ValidateTargetRef checks a targetRef: its kind must be one of
// rules.Allowed, and the name, tags, labels and proxyTypes fields must fit
// that kind.
func ValidateTargetRef(errs *validate.Errors, path validate.Path, ref TargetRef, rules RefRules) {
	kindPath := path.Field("kind")
	if ref.Kind == "" {
		errs.Add(kindPath, "must be defined")
		return
	}
	if _, known := specificity[ref.Kind]; !known {
		errs.Addf(kindPath, "unknown value %q: must be one of %s", ref.Kind, joinKinds(rules.Allowed))
		return
	}
	if !containsKind(rules.Allowed, ref.Kind) {
		errs.Addf(kindPath, "value %q is not supported here: must be one of %s", ref.Kind, joinKinds(rules.Allowed))
		return
	}
	switch ref.Kind {
	case Mesh:
		forbid(errs, path, "name", ref.Name != "")
		forbid(errs, path, "tags", ref.Tags != nil)
		forbid(errs, path, "labels", ref.Labels != nil)
	case MeshSubset:
		forbid(errs, path, "name", ref.Name != "")
		forbid(errs, path, "labels", ref.Labels != nil)
		validateTags(errs, path.Field("tags"), ref.Tags)
	case Dataplane:
		forbid(errs, path, "tags", ref.Tags != nil)
		if ref.Name != "" && ref.Labels != nil {
			errs.Add(path.Field("labels"), "must not be set together with name")
		}
	case MeshService, MeshHTTPRoute, MeshGateway, MeshExternalService, MeshMultiZoneService:
		forbid(errs, path, "tags", ref.Tags != nil)
		if ref.Name == "" && ref.Labels == nil {
			errs.Add(path.Field("name"), "must be set with kind "+string(ref.Kind))
		}
		if ref.Name != "" && ref.Labels != nil {
			errs.Add(path.Field("labels"), "must not be set together with name")
		}
	case MeshServiceSubset:
		forbid(errs, path, "labels", ref.Labels != nil)
		if ref.Name == "" {
			errs.Add(path.Field("name"), "must be set with kind MeshServiceSubset")
		}
		validateTags(errs, path.Field("tags"), ref.Tags)
	}
	if ref.Kind != Mesh && ref.Kind != MeshSubset && len(ref.ProxyTypes) > 0 {
		errs.Add(path.Field("proxyTypes"), "can only be used with kind Mesh or MeshSubset")
	}
	for i, pt := range ref.ProxyTypes {
		validate.Enum(errs, path.Field("proxyTypes").Index(i), string(pt), string(Sidecar), string(Gateway))
	}
}

func forbid(errs *validate.Errors, path validate.Path, field string, set bool) {
	if set {
		errs.Add(path.Field(field), "must not be set with this kind")
	}
}

func validateTags(errs *validate.Errors, path validate.Path, tags map[string]string) {
	for _, k := range validate.SortedKeys(tags) {
		if k == "" {
			errs.Add(path, "tag name must not be empty")
		}
		if tags[k] == "" {
			errs.Add(path.Key(k), "tag value must not be empty")
		}
	}
}

func containsKind(kinds []TargetRefKind, k TargetRefKind) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

func joinKinds(kinds []TargetRefKind) string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}
