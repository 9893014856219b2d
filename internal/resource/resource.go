package resource

import (
	"maps"
	"time"
)

// Meta is what every resource carries besides its spec.
type Meta struct {
	// Mesh is empty for global-scoped kinds.
	Mesh string
	Name string
	// Labels are the user's labels (policies) plus those the control plane
	// adds; nil when there are none.
	Labels map[string]string
	// Version is the store's opaque resource version; empty before the
	// resource is first stored.
	Version          string
	CreationTime     time.Time
	ModificationTime time.Time
}

// Resource is one typed resource: its descriptor, metadata and spec.
type Resource struct {
	Desc *Descriptor
	Meta Meta
	Spec Spec
}

// Key identifies a resource.
type Key struct {
	Kind string
	Mesh string
	Name string
}

// Key returns the resource's key.
func (r *Resource) Key() Key { return Key{Kind: r.Desc.Kind, Mesh: r.Meta.Mesh, Name: r.Meta.Name} }

// CloneLabels returns a copy of the resource's labels (never nil).
func (r *Resource) CloneLabels() map[string]string {
	out := map[string]string{}
	maps.Copy(out, r.Meta.Labels)
	return out
}
