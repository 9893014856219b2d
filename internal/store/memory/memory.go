// Package memory is an in-process Store for tests and throwaway control
// planes. It loses everything on exit.
package memory

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/store"
)

// Store keeps records in a map guarded by a mutex.
type Store struct {
	store.Broadcaster
	mu      sync.RWMutex
	records map[store.Key]*store.Record
	rev     int64
	now     func() time.Time
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{records: map[store.Key]*store.Record{}, now: time.Now}
}

func (s *Store) nextVersion() string {
	s.rev++
	return strconv.FormatInt(s.rev, 10)
}

// Create implements store.Store.
func (s *Store) Create(_ context.Context, r *store.Record) error {
	s.mu.Lock()
	k := r.Key()
	if _, exists := s.records[k]; exists {
		s.mu.Unlock()
		return fmt.Errorf("%s %q: %w", r.Kind, r.Name, store.ErrAlreadyExists)
	}
	if r.Mesh != "" {
		if _, ok := s.records[store.Key{Kind: store.MeshKind, Name: r.Mesh}]; !ok {
			s.mu.Unlock()
			return fmt.Errorf("mesh %q: %w", r.Mesh, store.ErrMeshNotFound)
		}
	}
	now := s.now().UTC()
	r.Version = s.nextVersion()
	r.CreationTime, r.ModificationTime = now, now
	s.records[k] = r.Clone()
	ev := store.Event{Op: store.OpCreate, Kind: r.Kind, Mesh: r.Mesh, Name: r.Name, Version: r.Version}
	s.Publish(ev)
	s.mu.Unlock()
	return nil
}

// Update implements store.Store.
func (s *Store) Update(_ context.Context, r *store.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.records[r.Key()]
	if !ok {
		return fmt.Errorf("%s %q: %w", r.Kind, r.Name, store.ErrNotFound)
	}
	if old.Version != r.Version {
		return fmt.Errorf("%s %q at version %s (stored %s): %w", r.Kind, r.Name, r.Version, old.Version, store.ErrConflict)
	}
	r.Version = s.nextVersion()
	r.CreationTime = old.CreationTime
	r.ModificationTime = s.now().UTC()
	s.records[r.Key()] = r.Clone()
	s.Publish(store.Event{Op: store.OpUpdate, Kind: r.Kind, Mesh: r.Mesh, Name: r.Name, Version: r.Version})
	return nil
}

// Delete implements store.Store.
func (s *Store) Delete(_ context.Context, k store.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.records[k]; !ok {
		return fmt.Errorf("%s %q: %w", k.Kind, k.Name, store.ErrNotFound)
	}
	var events []store.Event
	if k.Kind == store.MeshKind {
		var owned []*store.Record
		for _, r := range s.records {
			if r.Mesh == k.Name {
				owned = append(owned, r)
			}
		}
		store.SortRecords(owned)
		for _, r := range owned {
			delete(s.records, r.Key())
			events = append(events, store.Event{Op: store.OpDelete, Kind: r.Kind, Mesh: r.Mesh, Name: r.Name, Version: s.nextVersion()})
		}
	}
	delete(s.records, k)
	events = append(events, store.Event{Op: store.OpDelete, Kind: k.Kind, Mesh: k.Mesh, Name: k.Name, Version: s.nextVersion()})
	s.Publish(events...)
	return nil
}

// Get implements store.Store.
func (s *Store) Get(_ context.Context, k store.Key) (*store.Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.records[k]
	if !ok {
		return nil, fmt.Errorf("%s %q: %w", k.Kind, k.Name, store.ErrNotFound)
	}
	return r.Clone(), nil
}

// List implements store.Store.
func (s *Store) List(_ context.Context, q store.Query) (*store.Page, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var all []*store.Record
	for _, r := range s.records {
		if q.Matches(r) {
			all = append(all, r)
		}
	}
	store.SortRecords(all)
	// Clone only the page: stored records are never changed in place, but
	// callers may change what they get.
	p := q.Paginate(all)
	for i, r := range p.Items {
		p.Items[i] = r.Clone()
	}
	return p, nil
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.CloseAll()
	return nil
}
