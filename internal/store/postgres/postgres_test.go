package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/postgres"
	"github.com/trellis-mesh/trellis/internal/store/storetest"
	"github.com/trellis-mesh/trellis/internal/testing/pgtest"
)

// TestMain stops the package's shared PostgreSQL server after the tests.
func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T, url string) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, pgtest.Start(t)) })
}

// waitFor returns the first event on ch for which keep is true.
func waitFor(t *testing.T, ch <-chan store.Event, keep func(store.Event) bool) store.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatal("watch channel closed")
			}
			if keep(e) {
				return e
			}
		case <-timeout:
			t.Fatal("no event within 10s")
		}
	}
}

func TestTwoInstancesShareChanges(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	a, b := open(t, url), open(t, url)
	bWatch, err := b.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := &store.Record{Kind: store.MeshKind, Name: "default", Spec: []byte(`{}`)}
	r := &store.Record{Kind: "MeshTimeout", Mesh: "default", Name: "t1", Labels: map[string]string{"x": "y"}, Spec: []byte(`{"a":1}`)}
	for _, rec := range []*store.Record{m, r} {
		if err := a.Create(ctx, rec); err != nil {
			t.Fatalf("Create through A: %v", err)
		}
	}
	p, err := b.List(ctx, store.Query{Kind: "MeshTimeout"})
	if err != nil || p.Total != 1 || p.Items[0].Name != "t1" || p.Items[0].Version != r.Version {
		t.Fatalf("List through B: %+v %v", p, err)
	}
	e := waitFor(t, bWatch, func(e store.Event) bool { return e.Kind == "MeshTimeout" })
	if e.Op != store.OpCreate || e.Key() != r.Key() || e.Version != r.Version {
		t.Fatalf("B saw %+v, want create of %v at %s", e, r.Key(), r.Version)
	}

	// B updates with A's version; A's stale copy then conflicts.
	got, err := b.Get(ctx, r.Key())
	if err != nil {
		t.Fatal(err)
	}
	got.Spec = []byte(`{"a":2}`)
	if err := b.Update(ctx, got); err != nil {
		t.Fatalf("Update through B: %v", err)
	}
	if err := a.Update(ctx, r); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale Update through A: %v, want ErrConflict", err)
	}
	e = waitFor(t, bWatch, func(e store.Event) bool { return e.Kind == "MeshTimeout" })
	if e.Op != store.OpUpdate || e.Version != got.Version {
		t.Fatalf("B saw %+v, want update at %s", e, got.Version)
	}
	// A mesh delete through A reaches B's watcher for every record.
	if err := a.Delete(ctx, m.Key()); err != nil {
		t.Fatal(err)
	}
	e = waitFor(t, bWatch, func(e store.Event) bool { return e.Op == store.OpDelete })
	if e.Key() != r.Key() {
		t.Fatalf("first delete B saw: %+v, want %v", e, r.Key())
	}
	e = waitFor(t, bWatch, func(e store.Event) bool { return e.Op == store.OpDelete })
	if e.Key() != m.Key() {
		t.Fatalf("second delete B saw: %+v, want %v", e, m.Key())
	}
}

func TestInstancesStartingTogetherMigrateOnce(t *testing.T) {
	url := pgtest.Start(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := postgres.Open(context.Background(), url)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM trellis_schema_version`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("schema versions recorded: %d (%v), want 1", n, err)
	}
}

func TestListenerReconnectClosesWatchers(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	s := open(t, url)
	ch, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var killed int
	err = admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, postgres.ListenerApplicationName).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminating the listener: %d %v", killed, err)
	}
	// The old watcher is closed once the listener is back...
	timeout := time.After(15 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-ch:
		case <-timeout:
			t.Fatal("watcher not closed after the listener reconnected")
		}
	}
	// ...and a new one gets events again.
	ch, err = s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := &store.Record{Kind: store.MeshKind, Name: "after", Spec: []byte(`{}`)}
	if err := s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ch, func(e store.Event) bool { return e.Key() == m.Key() })
}
