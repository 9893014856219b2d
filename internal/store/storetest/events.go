package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/store"
)

// watch starts a watcher that lives until the test ends.
func watch(t *testing.T, s store.Store) <-chan store.Event {
	t.Helper()
	ch, err := s.Watch(ctx(t))
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	return ch
}

// next returns the next event for which keep is true, skipping others.
func next(t *testing.T, ch <-chan store.Event, keep func(store.Event) bool) store.Event {
	t.Helper()
	timer := time.NewTimer(EventTimeout)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("watch channel closed while waiting for an event")
			}
			if keep(e) {
				return e
			}
		case <-timer.C:
			t.Fatalf("no event within %v", EventTimeout)
		}
	}
}

func forKey(k store.Key) func(store.Event) bool {
	return func(e store.Event) bool { return e.Key() == k }
}

func checkEvent(t *testing.T, e store.Event, op store.Op, k store.Key, version string) {
	t.Helper()
	if e.Op != op || e.Key() != k {
		t.Fatalf("event %+v, want %s of %v", e, op, k)
	}
	if e.Version == "" {
		t.Fatalf("event %+v has no version", e)
	}
	if version != "" && e.Version != version {
		t.Fatalf("event %+v, want version %s", e, version)
	}
}

func testWatchEvents(t *testing.T, s store.Store) {
	mustCreate(t, s, mesh("default"))
	w1, w2 := watch(t, s), watch(t, s)
	r := rec("MeshRetry", "default", "r")
	mustCreate(t, s, r)
	created := r.Version
	r.Spec = []byte(`{"v":2}`)
	if err := s.Update(ctx(t), r); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if err := s.Delete(ctx(t), r.Key()); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	// A failed write sends nothing: the next event after the delete is the
	// marker's.
	if err := s.Create(ctx(t), rec("MeshRetry", "default", "r")); err != nil {
		t.Fatalf("recreate: %v", err)
	}
	if err := s.Create(ctx(t), rec("MeshRetry", "default", "r")); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("Create twice: %v", err)
	}
	marker := rec("MeshRetry", "default", "marker")
	mustCreate(t, s, marker)

	for i, ch := range []<-chan store.Event{w1, w2} {
		t.Logf("watcher %d", i+1)
		checkEvent(t, next(t, ch, forKey(r.Key())), store.OpCreate, r.Key(), created)
		checkEvent(t, next(t, ch, forKey(r.Key())), store.OpUpdate, r.Key(), r.Version)
		checkEvent(t, next(t, ch, forKey(r.Key())), store.OpDelete, r.Key(), "")
		checkEvent(t, next(t, ch, forKey(r.Key())), store.OpCreate, r.Key(), "")
		e := next(t, ch, func(e store.Event) bool { return e.Mesh == "default" })
		checkEvent(t, e, store.OpCreate, marker.Key(), marker.Version)
	}
}

func testWatchCloses(t *testing.T, s store.Store) {
	c, cancel := context.WithCancel(ctx(t))
	ch, err := s.Watch(c)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	other := watch(t, s)
	cancel()
	timer := time.NewTimer(EventTimeout)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				// Other watchers go on.
				mustCreate(t, s, mesh("after"))
				checkEvent(t, next(t, other, forKey(key(store.MeshKind, "", "after"))),
					store.OpCreate, key(store.MeshKind, "", "after"), "")
				return
			}
		case <-timer.C:
			t.Fatalf("watch channel still open %v after its context ended", EventTimeout)
		}
	}
}

func testDeleteMeshCascades(t *testing.T, s store.Store) {
	mustCreate(t, s, mesh("a"), mesh("b"),
		rec("MeshRetry", "a", "x"), rec("MeshRetry", "a", "y"), rec("MeshTimeout", "a", "x"),
		rec("MeshRetry", "b", "x"),
		&store.Record{Kind: "Zone", Name: "a", Spec: []byte(`{}`)})
	ch := watch(t, s)
	if err := s.Delete(ctx(t), key(store.MeshKind, "", "a")); err != nil {
		t.Fatalf("Delete mesh: %v", err)
	}
	gone := []store.Key{
		key(store.MeshKind, "", "a"), key("MeshRetry", "a", "x"), key("MeshRetry", "a", "y"), key("MeshTimeout", "a", "x"),
	}
	for _, k := range gone {
		if _, err := s.Get(ctx(t), k); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get %v after mesh delete: %v, want ErrNotFound", k, err)
		}
	}
	for _, k := range []store.Key{key(store.MeshKind, "", "b"), key("MeshRetry", "b", "x"), key("Zone", "", "a")} {
		mustGet(t, s, k)
	}
	checkList(t, s, store.Query{Kind: "MeshRetry"}, 1, key("MeshRetry", "b", "x"))

	// One delete event per deleted record, and no others: the next delete
	// after them is the marker's.
	want := map[store.Key]bool{}
	for _, k := range gone {
		want[k] = true
	}
	isDelete := func(e store.Event) bool { return e.Op == store.OpDelete }
	for range gone {
		e := next(t, ch, isDelete)
		if !want[e.Key()] {
			t.Fatalf("unexpected or repeated delete event %+v", e)
		}
		if e.Version == "" {
			t.Errorf("delete event %+v has no version", e)
		}
		delete(want, e.Key())
	}
	marker := key("MeshRetry", "b", "x")
	if err := s.Delete(ctx(t), marker); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkEvent(t, next(t, ch, isDelete), store.OpDelete, marker, "")

	// A mesh created again with the same name starts empty.
	mustCreate(t, s, mesh("a"))
	checkList(t, s, store.Query{Kind: "MeshRetry", Mesh: "a"}, 0)
	checkList(t, s, store.Query{Kind: "MeshTimeout"}, 0)
	// Deleting a mesh with no records works too.
	if err := s.Delete(ctx(t), key(store.MeshKind, "", "a")); err != nil {
		t.Fatalf("Delete empty mesh: %v", err)
	}
}

// testMeshDeleteRace deletes a mesh while writers keep creating records in
// it: afterwards no record of the mesh may be left behind.
func testMeshDeleteRace(t *testing.T, s store.Store) {
	mustCreate(t, s, mesh("doomed"))
	const writers = 4
	var done sync.WaitGroup
	created := make(chan struct{}, writers*200)
	errs := make(chan error, writers)
	for w := range writers {
		done.Add(1)
		go func() {
			defer done.Done()
			for i := range 200 {
				r := rec("MeshRetry", "doomed", fmt.Sprintf("w%d-%d", w, i))
				err := s.Create(context.Background(), r)
				if errors.Is(err, store.ErrMeshNotFound) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				created <- struct{}{}
			}
		}()
	}
	// Let the writers get going, then pull the mesh from under them.
	for range writers * 5 {
		select {
		case <-created:
		case <-time.After(EventTimeout):
			t.Fatal("writers made no records")
		}
	}
	if err := s.Delete(ctx(t), key(store.MeshKind, "", "doomed")); err != nil {
		t.Fatalf("Delete mesh: %v", err)
	}
	done.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Create: %v", err)
	}
	checkList(t, s, store.Query{Kind: "MeshRetry", Mesh: "doomed"}, 0)
}

func testConcurrentUpdates(t *testing.T, s store.Store) {
	const n = 8
	mustCreate(t, s, mesh("default"))
	r := rec("MeshRetry", "default", "r")
	mustCreate(t, s, r)

	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			c := r.Clone()
			c.Spec = []byte(`{"writer":` + string(rune('0'+i)) + `}`)
			start.Wait()
			errs[i] = s.Update(context.Background(), c)
		}()
	}
	start.Done()
	done.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("writer %d: %v, want nil or ErrConflict", i, err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent updates with one version succeeded, want exactly 1", ok, n)
	}

	// Concurrent creates of one key: one wins, the others already exist.
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			errs[i] = s.Create(context.Background(), rec("MeshTimeout", "default", "same"))
		}()
	}
	done.Wait()
	ok = 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrAlreadyExists):
			t.Errorf("creator %d: %v, want nil or ErrAlreadyExists", i, err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent creates of one key succeeded, want exactly 1", ok, n)
	}
}

func testOddCharacters(t *testing.T, s store.Store) {
	meshName := `mesh "ü" 'q' ✓`
	names := []string{`it's "quoted"`, "ünïcödé-✓-🚀", "semi;colon--", `back\slash`, "per%cent_under", "tab\tnew\nline", "{\"json\":1}"}
	mustCreate(t, s, mesh(meshName))
	ch := watch(t, s)
	for _, n := range names {
		r := &store.Record{
			Kind:   "Mesh\"Retry'ü",
			Mesh:   meshName,
			Name:   n,
			Labels: map[string]string{n: n, "kuma.io/display-name": n},
			Spec:   []byte(`{"name":` + jsonString(n) + `}`),
		}
		mustCreate(t, s, r)
		got := mustGet(t, s, r.Key())
		if d := sameRecord(got, r); d != "" {
			t.Errorf("%q: %s", n, d)
		}
		checkEvent(t, next(t, ch, forKey(r.Key())), store.OpCreate, r.Key(), r.Version)
		checkList(t, s, store.Query{Kind: r.Kind, Mesh: meshName, NameContains: n, Labels: map[string]string{n: n}}, 1, r.Key())
		r.Spec = []byte(`{"updated":` + jsonString(n) + `}`)
		if err := s.Update(ctx(t), r); err != nil {
			t.Fatalf("Update %q: %v", n, err)
		}
		checkEvent(t, next(t, ch, forKey(r.Key())), store.OpUpdate, r.Key(), r.Version)
	}
	checkList(t, s, store.Query{Kind: "Mesh\"Retry'ü"}, len(names), keysSorted("Mesh\"Retry'ü", meshName, names)...)
	if err := s.Delete(ctx(t), key(store.MeshKind, "", meshName)); err != nil {
		t.Fatalf("Delete mesh: %v", err)
	}
	checkList(t, s, store.Query{Kind: "Mesh\"Retry'ü"}, 0)
}

func keysSorted(kind, meshName string, names []string) []store.Key {
	ks := make([]store.Key, 0, len(names))
	for _, n := range names {
		ks = append(ks, key(kind, meshName, n))
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].Name < ks[j].Name })
	return ks
}

// jsonString quotes s as a JSON string.
func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}
