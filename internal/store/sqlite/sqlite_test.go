package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/sqlite"
	"github.com/trellis-mesh/trellis/internal/store/storetest"
)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "trellis.db"))
	})
}

func TestDataSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	// The parent directories do not exist yet, and the path has odd characters.
	path := filepath.Join(t.TempDir(), "data dir", "sub?#%", "trellis.db")
	s := open(t, path)
	m := &store.Record{Kind: store.MeshKind, Name: "default", Spec: []byte(`{}`)}
	r := &store.Record{Kind: "MeshRetry", Mesh: "default", Name: "r", Labels: map[string]string{"a": "b"}, Spec: []byte(`{"x": 1}`)}
	for _, rec := range []*store.Record{m, r} {
		if err := s.Create(ctx, rec); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	if err := s.Delete(ctx, store.Key{Kind: "MeshRetry", Mesh: "default", Name: "r"}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	r.Version = ""
	if err := s.Create(ctx, r); err != nil {
		t.Fatalf("Create again: %v", err)
	}
	lastVersion := r.Version
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t, path)
	defer s.Close()
	got, err := s.Get(ctx, r.Key())
	if err != nil {
		t.Fatalf("Get after reopen: %v", err)
	}
	if string(got.Spec) != `{"x": 1}` || got.Labels["a"] != "b" || got.Version != r.Version ||
		!got.CreationTime.Equal(r.CreationTime) {
		t.Fatalf("record after reopen: %+v, want %+v", got, r)
	}
	// Versions keep growing across restarts.
	got.Spec = []byte(`{"x": 2}`)
	if err := s.Update(ctx, got); err != nil {
		t.Fatalf("Update after reopen: %v", err)
	}
	if a, b := mustInt(t, lastVersion), mustInt(t, got.Version); b <= a {
		t.Fatalf("version after reopen %d, not above %d", b, a)
	}
	p, err := s.List(ctx, store.Query{Kind: store.MeshKind})
	if err != nil || p.Total != 1 {
		t.Fatalf("List meshes after reopen: %+v %v", p, err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trellis.db")
	open(t, path).Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = sqlite.Open(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: %v, want an error", err)
	}
}

func TestTwoStoresOnOneFile(t *testing.T) {
	// A second process (here: a second Store) sees committed data and can
	// write too; the busy timeout makes the writers take turns.
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "trellis.db")
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	if err := a.Create(ctx, &store.Record{Kind: store.MeshKind, Name: "m", Spec: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for i, s := range []*sqlite.Store{a, b} {
		go func() {
			for j := range 50 {
				r := &store.Record{Kind: "K", Mesh: "m", Name: strconv.Itoa(i) + "-" + strconv.Itoa(j), Spec: []byte(`{}`)}
				if err := s.Create(ctx, r); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	p, err := b.List(ctx, store.Query{Kind: "K"})
	if err != nil || p.Total != 100 {
		t.Fatalf("List: total %v, %v; want 100", p, err)
	}
	err = b.Create(ctx, &store.Record{Kind: store.MeshKind, Name: "m", Spec: []byte(`{}`)})
	if !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("Create of a mesh made by the other store: %v", err)
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("version %q is not an integer: %v", s, err)
	}
	return n
}
