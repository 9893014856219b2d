// Package store defines how Trellis keeps resources: one small Store
// interface with optimistic concurrency and change events, implemented by
// memory/ (tests), sqlite/ (the embedded default) and postgres/ (production
// and HA). storetest/ is the conformance suite every implementation runs.
//
// Stores hold specs as opaque canonical JSON; they know nothing of kinds
// except that a Mesh owns every record whose Mesh field names it.
package store

import (
	"context"
	"errors"
	"maps"
	"time"
)

// MeshKind is the kind whose records own mesh-scoped records: deleting a
// Mesh deletes every record with that mesh, in one transaction.
const MeshKind = "Mesh"

// Sentinel errors; implementations wrap them with %w.
var (
	ErrNotFound      = errors.New("resource not found")
	ErrAlreadyExists = errors.New("resource already exists")
	// ErrConflict: Update's Version is not the stored one (someone else
	// changed the record first).
	ErrConflict = errors.New("resource version conflict")
	// ErrMeshNotFound: a mesh-scoped record names a mesh that does not exist.
	ErrMeshNotFound = errors.New("mesh not found")
)

// Key identifies a record. Mesh is empty for global-scoped kinds.
type Key struct {
	Kind string
	Mesh string
	Name string
}

// Record is one stored resource.
type Record struct {
	Kind   string
	Mesh   string
	Name   string
	Labels map[string]string
	// Spec is the canonical JSON of the resource's spec.
	Spec []byte
	// Version is opaque; the store sets it on every write. Update requires
	// the caller's Version to equal the stored one.
	Version          string
	CreationTime     time.Time
	ModificationTime time.Time
}

// Key returns the record's key.
func (r *Record) Key() Key { return Key{Kind: r.Kind, Mesh: r.Mesh, Name: r.Name} }

// Clone returns a deep copy.
func (r *Record) Clone() *Record {
	c := *r
	c.Spec = append([]byte(nil), r.Spec...)
	if r.Labels != nil {
		c.Labels = maps.Clone(r.Labels)
	}
	return &c
}

// Query selects records of one kind.
type Query struct {
	Kind string
	// Mesh limits the list to one mesh; empty means every mesh.
	Mesh string
	// NameContains keeps records whose name contains it.
	NameContains string
	// Labels keeps records carrying every one of these labels with equal values.
	Labels map[string]string
	// Offset skips that many matching records.
	Offset int
	// Limit caps the page size; 0 means no cap.
	Limit int
}

// Page is one page of a List, ordered by name, then mesh.
type Page struct {
	Items []*Record
	// Total counts every record matching the query, ignoring Offset/Limit.
	Total int
}

// Op is what happened to a record.
type Op string

// Operations.
const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// Event tells that a record changed. It is delivered after the change is
// committed, on every control-plane instance sharing the store.
type Event struct {
	Op      Op
	Kind    string
	Mesh    string
	Name    string
	Version string
}

// Key returns the key of the changed record.
func (e Event) Key() Key { return Key{Kind: e.Kind, Mesh: e.Mesh, Name: e.Name} }

// Store keeps resources.
type Store interface {
	// Create stores a new record and sets its Version and times.
	Create(ctx context.Context, r *Record) error
	// Update replaces a record whose stored Version equals r.Version, and
	// sets the new Version and ModificationTime.
	Update(ctx context.Context, r *Record) error
	// Delete removes a record; deleting a Mesh removes its records too.
	Delete(ctx context.Context, k Key) error
	// Get returns one record.
	Get(ctx context.Context, k Key) (*Record, error)
	// List returns one page of records of a kind.
	List(ctx context.Context, q Query) (*Page, error)
	// Watch streams change events until ctx ends. The channel is closed when
	// ctx ends, or when the watcher falls so far behind that events were
	// lost; the caller then lists again and watches anew.
	Watch(ctx context.Context) (<-chan Event, error)
	// Close releases the store's resources.
	Close() error
}
