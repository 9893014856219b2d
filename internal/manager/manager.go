// Package manager sits between the API and the store: it turns typed
// resources into store records and back, keeps optimistic concurrency for
// read-modify-write, and runs the control plane's hooks when a resource is
// created (a new mesh gets its signing key and default policies).
package manager

import (
	"context"
	"errors"
	"fmt"

	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/store"
)

// CreateHook runs after a resource was created. An error is returned to the
// caller of Apply/Create but does not undo the creation.
type CreateHook func(ctx context.Context, res *resource.Resource) error

// ValidateHook checks a resource before it is created or updated, for
// checks that need more than the spec (the store, the file system). An
// error refuses the write; a *validate.Error reaches the API client with
// its field paths.
type ValidateHook func(ctx context.Context, res *resource.Resource) error

// Manager reads and writes typed resources.
type Manager struct {
	store      store.Store
	registry   *resource.Registry
	hooks      []CreateHook
	validators []ValidateHook
}

// New returns a manager over st for the kinds of reg.
func New(st store.Store, reg *resource.Registry) *Manager {
	return &Manager{store: st, registry: reg}
}

// OnCreate adds a hook run after every successful create.
func (m *Manager) OnCreate(h CreateHook) { m.hooks = append(m.hooks, h) }

// OnValidate adds a check run before every create and update.
func (m *Manager) OnValidate(h ValidateHook) { m.validators = append(m.validators, h) }

func (m *Manager) validate(ctx context.Context, res *resource.Resource) error {
	for _, v := range m.validators {
		if err := v(ctx, res); err != nil {
			return err
		}
	}
	return nil
}

// Registry returns the manager's kinds.
func (m *Manager) Registry() *resource.Registry { return m.registry }

// Store returns the underlying store (for watchers).
func (m *Manager) Store() store.Store { return m.store }

// ListOptions filter a List.
type ListOptions struct {
	Mesh         string
	NameContains string
	Labels       map[string]string
	Offset       int
	Limit        int
}

// Get returns one resource.
func (m *Manager) Get(ctx context.Context, d *resource.Descriptor, mesh, name string) (*resource.Resource, error) {
	rec, err := m.store.Get(ctx, store.Key{Kind: d.Kind, Mesh: mesh, Name: name})
	if err != nil {
		return nil, err
	}
	return m.fromRecord(d, rec)
}

// List returns one page of resources of kind d and the total count.
func (m *Manager) List(ctx context.Context, d *resource.Descriptor, o ListOptions) ([]*resource.Resource, int, error) {
	page, err := m.store.List(ctx, store.Query{Kind: d.Kind, Mesh: o.Mesh, NameContains: o.NameContains, Labels: o.Labels, Offset: o.Offset, Limit: o.Limit})
	if err != nil {
		return nil, 0, err
	}
	out := make([]*resource.Resource, 0, len(page.Items))
	for _, rec := range page.Items {
		res, err := m.fromRecord(d, rec)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, res)
	}
	return out, page.Total, nil
}

// Create stores a new resource and runs the create hooks.
func (m *Manager) Create(ctx context.Context, res *resource.Resource) error {
	if err := m.validate(ctx, res); err != nil {
		return err
	}
	return m.create(ctx, res)
}

// create stores a new, validated resource and runs the create hooks.
func (m *Manager) create(ctx context.Context, res *resource.Resource) error {
	rec, err := toRecord(res)
	if err != nil {
		return err
	}
	if err := m.store.Create(ctx, rec); err != nil {
		return err
	}
	setStored(res, rec)
	return m.runHooks(ctx, res)
}

// maxApplyAttempts bounds the retries of Apply when another writer updates
// the same resource between its read and its write.
const maxApplyAttempts = 5

// Apply creates the resource or replaces the spec and labels of the stored
// one. It reports whether it created it.
func (m *Manager) Apply(ctx context.Context, res *resource.Resource) (created bool, err error) {
	if err := m.validate(ctx, res); err != nil {
		return false, err
	}
	for attempt := 0; attempt < maxApplyAttempts; attempt++ {
		cur, err := m.store.Get(ctx, store.Key{Kind: res.Desc.Kind, Mesh: res.Meta.Mesh, Name: res.Meta.Name})
		switch {
		case errors.Is(err, store.ErrNotFound):
			err = m.create(ctx, res)
			if errors.Is(err, store.ErrAlreadyExists) {
				continue // created concurrently: update it instead
			}
			return err == nil, err
		case err != nil:
			return false, err
		}
		rec, err := toRecord(res)
		if err != nil {
			return false, err
		}
		rec.Version = cur.Version
		err = m.store.Update(ctx, rec)
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		setStored(res, rec)
		return false, nil
	}
	return false, fmt.Errorf("%s %q: gave up after %d concurrent modifications: %w", res.Desc.Kind, res.Meta.Name, maxApplyAttempts, store.ErrConflict)
}

// Delete removes a resource (a mesh with all its resources).
func (m *Manager) Delete(ctx context.Context, d *resource.Descriptor, mesh, name string) error {
	return m.store.Delete(ctx, store.Key{Kind: d.Kind, Mesh: mesh, Name: name})
}

func (m *Manager) runHooks(ctx context.Context, res *resource.Resource) error {
	var errs []error
	for _, h := range m.hooks {
		if err := h(ctx, res); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func toRecord(res *resource.Resource) (*store.Record, error) {
	spec, err := resource.MarshalSpec(res.Spec)
	if err != nil {
		return nil, fmt.Errorf("encoding %s %q: %w", res.Desc.Kind, res.Meta.Name, err)
	}
	return &store.Record{
		Kind:    res.Desc.Kind,
		Mesh:    res.Meta.Mesh,
		Name:    res.Meta.Name,
		Labels:  res.Meta.Labels,
		Spec:    spec,
		Version: res.Meta.Version,
	}, nil
}

func setStored(res *resource.Resource, rec *store.Record) {
	res.Meta.Version = rec.Version
	res.Meta.CreationTime = rec.CreationTime
	res.Meta.ModificationTime = rec.ModificationTime
}

func (m *Manager) fromRecord(d *resource.Descriptor, rec *store.Record) (*resource.Resource, error) {
	spec, err := resource.UnmarshalSpec(d, rec.Spec)
	if err != nil {
		return nil, err
	}
	return &resource.Resource{
		Desc: d,
		Spec: spec,
		Meta: resource.Meta{
			Mesh:             rec.Mesh,
			Name:             rec.Name,
			Labels:           rec.Labels,
			Version:          rec.Version,
			CreationTime:     rec.CreationTime,
			ModificationTime: rec.ModificationTime,
		},
	}, nil
}
