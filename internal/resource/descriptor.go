// Package resource describes the kinds of resource Trellis stores and serves:
// one Descriptor per kind (its name, REST path, scope and shape), a Registry
// that the API server, the CLI and the stores iterate over, and the codec that
// reads and writes Kuma's Universal YAML/JSON shapes.
package resource

import (
	"fmt"
	"sort"
	"strings"
)

// Scope says whether a kind lives inside a mesh or beside meshes.
type Scope string

// Scopes.
const (
	ScopeGlobal Scope = "Global"
	ScopeMesh   Scope = "Mesh"
)

// Shape says how a kind is laid out in YAML/JSON.
type Shape int

// Shapes.
const (
	// ShapeFlat kinds keep their spec fields next to type, name and mesh
	// (Mesh, Dataplane, Secret, ...).
	ShapeFlat Shape = iota
	// ShapePolicy kinds nest their spec under "spec" and carry labels
	// (MeshTimeout, MeshRetry, ...).
	ShapePolicy
)

// Spec is the typed body of a resource. Validate checks every field and
// returns nil or a *validate.Error whose field paths are relative to the
// spec's root ("to[0].default.connectionTimeout" for a policy,
// "networking.inbound[0].port" for a Dataplane).
type Spec interface {
	Validate() error
}

// PolicyInfo tells which sections a policy kind has, for /_resources.
type PolicyInfo struct {
	HasTo    bool
	HasFrom  bool
	HasRules bool
}

// Descriptor describes one kind of resource.
type Descriptor struct {
	// Kind is the value of the "type" field, e.g. "MeshTimeout".
	Kind string
	// Path is the REST path segment, e.g. "meshtimeouts" or "global-secrets".
	Path string
	// Singular is the lowercase name the CLI accepts, e.g. "meshtimeout".
	Singular string
	// ShortNames are extra CLI aliases, e.g. "mt".
	ShortNames []string
	// Scope says whether the kind lives in a mesh.
	Scope Scope
	// Shape says whether the spec is flat or under "spec".
	Shape Shape
	// Policy is set for policy kinds.
	Policy *PolicyInfo
	// ReadOnly kinds cannot be written through the API.
	ReadOnly bool
	// NewSpec returns a pointer to a zero spec of this kind.
	NewSpec func() Spec
}

// IsPolicy reports whether the kind is a targetRef policy.
func (d *Descriptor) IsPolicy() bool { return d.Shape == ShapePolicy }

// DisplayName splits the kind into words: "MeshHTTPRoute" → "Mesh HTTP Route".
func (d *Descriptor) DisplayName() string {
	var b strings.Builder
	r := []rune(d.Kind)
	for i, c := range r {
		upper := c >= 'A' && c <= 'Z'
		if i > 0 && upper {
			prevLower := r[i-1] >= 'a' && r[i-1] <= 'z'
			nextLower := i+1 < len(r) && r[i+1] >= 'a' && r[i+1] <= 'z'
			if prevLower || nextLower {
				b.WriteByte(' ')
			}
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Registry holds the descriptors of every supported kind and finds them by
// kind, REST path or CLI name.
type Registry struct {
	ordered     []*Descriptor
	byKind      map[string]*Descriptor
	byPath      map[string]*Descriptor
	byName      map[string]*Descriptor
	unsupported map[string]string
}

// NewRegistry builds a registry from descriptors. Kinds, paths and CLI names
// must be unique. unsupported maps kinds (and their paths) that are known
// but not served yet to the kind name used in "not supported yet" errors.
func NewRegistry(descs []*Descriptor, unsupported map[string]string) (*Registry, error) {
	r := &Registry{
		byKind:      map[string]*Descriptor{},
		byPath:      map[string]*Descriptor{},
		byName:      map[string]*Descriptor{},
		unsupported: unsupported,
	}
	for _, d := range descs {
		if _, dup := r.byKind[d.Kind]; dup {
			return nil, fmt.Errorf("resource registry: kind %q registered twice", d.Kind)
		}
		if _, dup := r.byPath[d.Path]; dup {
			return nil, fmt.Errorf("resource registry: path %q registered twice", d.Path)
		}
		r.byKind[d.Kind] = d
		r.byPath[d.Path] = d
		for _, n := range append([]string{strings.ToLower(d.Kind), d.Singular, d.Path}, d.ShortNames...) {
			if n == "" {
				continue
			}
			if other, dup := r.byName[n]; dup && other != d {
				return nil, fmt.Errorf("resource registry: CLI name %q used by %s and %s", n, other.Kind, d.Kind)
			}
			r.byName[n] = d
		}
		r.ordered = append(r.ordered, d)
	}
	sort.Slice(r.ordered, func(i, j int) bool { return r.ordered[i].Kind < r.ordered[j].Kind })
	return r, nil
}

// All returns every descriptor, sorted by kind.
func (r *Registry) All() []*Descriptor { return r.ordered }

// ByKind finds a descriptor by its "type" value.
func (r *Registry) ByKind(kind string) (*Descriptor, bool) {
	d, ok := r.byKind[kind]
	return d, ok
}

// ByPath finds a descriptor by its REST path segment.
func (r *Registry) ByPath(path string) (*Descriptor, bool) {
	d, ok := r.byPath[path]
	return d, ok
}

// ByName finds a descriptor by any name a user may type: the kind in any
// case, the singular, the plural path or a short name.
func (r *Registry) ByName(name string) (*Descriptor, bool) {
	if d, ok := r.byKind[name]; ok {
		return d, true
	}
	d, ok := r.byName[strings.ToLower(name)]
	return d, ok
}

// Unsupported reports whether name (a kind or a REST path) is a Kuma kind
// that Trellis does not serve yet, and returns its kind name.
func (r *Registry) Unsupported(name string) (string, bool) {
	k, ok := r.unsupported[name]
	return k, ok
}
