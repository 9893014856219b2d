// Package storetest is the conformance suite every store.Store
// implementation runs, so memory, SQLite and PostgreSQL behave alike:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return newStoreForTest(t) })
//	}
//
// Each subtest asks newStore for a fresh, empty store and closes it when the
// subtest ends; newStore registers with t.Cleanup whatever else must go
// (files, databases), and that runs after the store is closed.
//
// Events may reach watchers asynchronously (PostgreSQL delivers them through
// LISTEN/NOTIFY), so the suite waits for them with a timeout and ignores
// events about records a subtest set up before it started watching.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/store"
)

// EventTimeout is how long the suite waits for one expected watch event.
const EventTimeout = 10 * time.Second

// Run runs every conformance subtest against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateGet", testCreateGet},
		{"Update", testUpdate},
		{"Delete", testDelete},
		{"AlreadyExists", testAlreadyExists},
		{"NotFound", testNotFound},
		{"Conflict", testConflict},
		{"MeshNotFound", testMeshNotFound},
		{"VersionsChangeOnEveryWrite", testVersionsChange},
		{"Times", testTimes},
		{"RoundTrip", testRoundTrip},
		{"ListByKindAndMesh", testListKindMesh},
		{"ListNameContains", testListNameContains},
		{"ListLabels", testListLabels},
		{"ListOrder", testListOrder},
		{"ListPagination", testListPagination},
		{"DeleteMeshCascades", testDeleteMeshCascades},
		{"WatchEvents", testWatchEvents},
		{"WatchClosesWhenContextEnds", testWatchCloses},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"MeshDeleteRace", testMeshDeleteRace},
		{"OddCharacters", testOddCharacters},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// ctx returns a context that ends with the test.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// mesh returns a new Mesh record.
func mesh(name string) *store.Record {
	return &store.Record{Kind: store.MeshKind, Name: name, Spec: []byte(`{}`)}
}

// rec returns a new mesh-scoped record.
func rec(kind, meshName, name string) *store.Record {
	return &store.Record{Kind: kind, Mesh: meshName, Name: name, Spec: []byte(`{"name":"` + name + `"}`)}
}

func mustCreate(t *testing.T, s store.Store, rs ...*store.Record) {
	t.Helper()
	for _, r := range rs {
		if err := s.Create(ctx(t), r); err != nil {
			t.Fatalf("Create %s %s/%s: %v", r.Kind, r.Mesh, r.Name, err)
		}
	}
}

func mustGet(t *testing.T, s store.Store, k store.Key) *store.Record {
	t.Helper()
	r, err := s.Get(ctx(t), k)
	if err != nil {
		t.Fatalf("Get %v: %v", k, err)
	}
	return r
}

func mustList(t *testing.T, s store.Store, q store.Query) *store.Page {
	t.Helper()
	p, err := s.List(ctx(t), q)
	if err != nil {
		t.Fatalf("List %+v: %v", q, err)
	}
	return p
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// keysOf returns the keys of a page's items, in order.
func keysOf(p *store.Page) []store.Key {
	ks := make([]store.Key, 0, len(p.Items))
	for _, r := range p.Items {
		ks = append(ks, r.Key())
	}
	return ks
}

func sameKeys(a, b []store.Key) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sameRecord reports how got differs from want, or "" when they are equal
// (times compared with Equal, labels nil and empty alike).
func sameRecord(got, want *store.Record) string {
	switch {
	case got.Kind != want.Kind || got.Mesh != want.Mesh || got.Name != want.Name:
		return "key " + keyString(got.Key()) + ", want " + keyString(want.Key())
	case string(got.Spec) != string(want.Spec):
		return "spec " + string(got.Spec) + ", want " + string(want.Spec)
	case got.Version != want.Version:
		return "version " + got.Version + ", want " + want.Version
	case !got.CreationTime.Equal(want.CreationTime):
		return "creation time " + got.CreationTime.String() + ", want " + want.CreationTime.String()
	case !got.ModificationTime.Equal(want.ModificationTime):
		return "modification time " + got.ModificationTime.String() + ", want " + want.ModificationTime.String()
	case len(got.Labels) != len(want.Labels):
		return "labels differ"
	}
	for k, v := range want.Labels {
		if g, ok := got.Labels[k]; !ok || g != v {
			return "label " + k + " = " + g + ", want " + v
		}
	}
	return ""
}

func keyString(k store.Key) string { return k.Kind + " " + k.Mesh + "/" + k.Name }
