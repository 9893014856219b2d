// Package metered wraps a store.Store and times every operation into the
// control plane's metrics (the "store" histogram, by operation, resource
// kind and store type).
package metered

import (
	"context"
	"time"

	"github.com/trellis-mesh/trellis/internal/cpmetrics"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Store is a store.Store whose operations are timed.
type Store struct {
	inner     store.Store
	metrics   *cpmetrics.Metrics
	storeType string
}

var _ store.Store = (*Store)(nil)

// New wraps inner; storeType (memory, sqlite, postgres) labels its
// operations. A nil metrics makes it a pass-through.
func New(inner store.Store, storeType string, metrics *cpmetrics.Metrics) *Store {
	return &Store{inner: inner, metrics: metrics, storeType: storeType}
}

// Inner returns the wrapped store.
func (s *Store) Inner() store.Store { return s.inner }

func (s *Store) observe(op, kind string, start time.Time) {
	s.metrics.ObserveStore(op, kind, s.storeType, time.Since(start))
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, r *store.Record) error {
	defer s.observe("create", r.Kind, time.Now())
	return s.inner.Create(ctx, r)
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, r *store.Record) error {
	defer s.observe("update", r.Kind, time.Now())
	return s.inner.Update(ctx, r)
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, k store.Key) error {
	defer s.observe("delete", k.Kind, time.Now())
	return s.inner.Delete(ctx, k)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, k store.Key) (*store.Record, error) {
	defer s.observe("get", k.Kind, time.Now())
	return s.inner.Get(ctx, k)
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, q store.Query) (*store.Page, error) {
	defer s.observe("list", q.Kind, time.Now())
	return s.inner.List(ctx, q)
}

// Watch implements store.Store (not timed: a watch lasts as long as its
// context).
func (s *Store) Watch(ctx context.Context) (<-chan store.Event, error) {
	return s.inner.Watch(ctx)
}

// Close implements store.Store.
func (s *Store) Close() error { return s.inner.Close() }
