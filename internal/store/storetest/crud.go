package storetest

import (
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/store"
)

func testCreateGet(t *testing.T, s store.Store) {
	m := mesh("default")
	mustCreate(t, s, m)
	if m.Version == "" || m.CreationTime.IsZero() || m.ModificationTime.IsZero() {
		t.Fatalf("Create did not set version and times: %+v", m)
	}
	r := rec("MeshTimeout", "default", "timeout-1")
	r.Labels = map[string]string{"team": "payments"}
	mustCreate(t, s, r)
	got := mustGet(t, s, r.Key())
	if d := sameRecord(got, r); d != "" {
		t.Fatalf("Get after Create: %s", d)
	}
	if !got.CreationTime.Equal(got.ModificationTime) {
		t.Errorf("new record: creation %v != modification %v", got.CreationTime, got.ModificationTime)
	}
	gm := mustGet(t, s, store.Key{Kind: store.MeshKind, Name: "default"})
	if d := sameRecord(gm, m); d != "" {
		t.Fatalf("Get mesh: %s", d)
	}
	// The store keeps its own copy: changing the caller's record or the
	// returned one changes nothing stored.
	r.Spec[0] = 'X'
	r.Labels["team"] = "changed"
	got.Spec[0] = 'Y'
	got.Labels["team"] = "changed"
	again := mustGet(t, s, r.Key())
	if again.Spec[0] != '{' || again.Labels["team"] != "payments" {
		t.Fatalf("stored record shares memory with callers: %s %v", again.Spec, again.Labels)
	}
}

func testUpdate(t *testing.T, s store.Store) {
	mustCreate(t, s, mesh("default"))
	r := rec("MeshRetry", "default", "retry")
	r.Labels = map[string]string{"a": "1"}
	mustCreate(t, s, r)
	created := r.Clone()

	upd := mustGet(t, s, r.Key())
	upd.Spec = []byte(`{"changed":true}`)
	upd.Labels = map[string]string{"b": "2"}
	if err := s.Update(ctx(t), upd); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if upd.Version == created.Version {
		t.Fatalf("Update kept version %s", upd.Version)
	}
	got := mustGet(t, s, r.Key())
	if d := sameRecord(got, upd); d != "" {
		t.Fatalf("Get after Update: %s", d)
	}
	if _, ok := got.Labels["a"]; ok {
		t.Errorf("Update merged labels instead of replacing them: %v", got.Labels)
	}
}

func testDelete(t *testing.T, s store.Store) {
	mustCreate(t, s, mesh("default"))
	r := rec("MeshRetry", "default", "retry")
	other := rec("MeshRetry", "default", "retry-2")
	mustCreate(t, s, r, other)
	if err := s.Delete(ctx(t), r.Key()); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Get(ctx(t), r.Key())
	wantErr(t, "Get after Delete", err, store.ErrNotFound)
	wantErr(t, "second Delete", s.Delete(ctx(t), r.Key()), store.ErrNotFound)
	mustGet(t, s, other.Key())
	// The name is free again.
	again := rec("MeshRetry", "default", "retry")
	mustCreate(t, s, again)
}

func testAlreadyExists(t *testing.T, s store.Store) {
	mustCreate(t, s, mesh("default"))
	wantErr(t, "Create mesh twice", s.Create(ctx(t), mesh("default")), store.ErrAlreadyExists)
	mustCreate(t, s, rec("MeshRetry", "default", "r"))
	wantErr(t, "Create twice", s.Create(ctx(t), rec("MeshRetry", "default", "r")), store.ErrAlreadyExists)
	// The same name is fine in another kind, or another mesh.
	mustCreate(t, s, mesh("other"), rec("MeshTimeout", "default", "r"), rec("MeshRetry", "other", "r"))
}

func testNotFound(t *testing.T, s store.Store) {
	mustCreate(t, s, mesh("default"))
	k := store.Key{Kind: "MeshRetry", Mesh: "default", Name: "missing"}
	_, err := s.Get(ctx(t), k)
	wantErr(t, "Get", err, store.ErrNotFound)
	wantErr(t, "Delete", s.Delete(ctx(t), k), store.ErrNotFound)
	r := rec("MeshRetry", "default", "missing")
	r.Version = "1"
	wantErr(t, "Update", s.Update(ctx(t), r), store.ErrNotFound)
	_, err = s.Get(ctx(t), store.Key{Kind: store.MeshKind, Name: "nope"})
	wantErr(t, "Get mesh", err, store.ErrNotFound)
}

func testConflict(t *testing.T, s store.Store) {
	mustCreate(t, s, mesh("default"))
	r := rec("MeshRetry", "default", "r")
	mustCreate(t, s, r)
	stale := r.Clone()
	fresh := r.Clone()
	fresh.Spec = []byte(`{"v":2}`)
	if err := s.Update(ctx(t), fresh); err != nil {
		t.Fatalf("Update: %v", err)
	}
	stale.Spec = []byte(`{"v":"stale"}`)
	wantErr(t, "Update with stale version", s.Update(ctx(t), stale), store.ErrConflict)
	bogus := r.Clone()
	bogus.Version = "not-a-version"
	wantErr(t, "Update with bogus version", s.Update(ctx(t), bogus), store.ErrConflict)
	empty := r.Clone()
	empty.Version = ""
	wantErr(t, "Update without version", s.Update(ctx(t), empty), store.ErrConflict)
	if got := mustGet(t, s, r.Key()); string(got.Spec) != `{"v":2}` {
		t.Fatalf("a failed update changed the record: %s", got.Spec)
	}
}

func testMeshNotFound(t *testing.T, s store.Store) {
	wantErr(t, "Create in missing mesh", s.Create(ctx(t), rec("MeshRetry", "nope", "r")), store.ErrMeshNotFound)
	_, err := s.Get(ctx(t), store.Key{Kind: "MeshRetry", Mesh: "nope", Name: "r"})
	wantErr(t, "Get after failed Create", err, store.ErrNotFound)
	// A record whose name is a mesh's name, of another kind, is no mesh.
	mustCreate(t, s, &store.Record{Kind: "Zone", Name: "zone-mesh", Spec: []byte(`{}`)})
	wantErr(t, "Create in non-mesh", s.Create(ctx(t), rec("MeshRetry", "zone-mesh", "r")), store.ErrMeshNotFound)
	// Global-scoped records need no mesh.
	mustCreate(t, s, &store.Record{Kind: "GlobalThing", Name: "g", Spec: []byte(`{}`)})
}

func testVersionsChange(t *testing.T, s store.Store) {
	seen := map[string]string{}
	note := func(what, v string) {
		t.Helper()
		if v == "" {
			t.Fatalf("%s: empty version", what)
		}
		if prev, dup := seen[v]; dup {
			t.Fatalf("%s: version %s already given to %s", what, v, prev)
		}
		seen[v] = what
	}
	m := mesh("default")
	mustCreate(t, s, m)
	note("create mesh", m.Version)
	a, b := rec("MeshRetry", "default", "a"), rec("MeshRetry", "default", "b")
	mustCreate(t, s, a, b)
	note("create a", a.Version)
	note("create b", b.Version)
	for i := range 3 {
		a.Spec = []byte(`{"i":` + string(rune('0'+i)) + `}`)
		if err := s.Update(ctx(t), a); err != nil {
			t.Fatalf("Update %d: %v", i, err)
		}
		note("update a", a.Version)
		if got := mustGet(t, s, a.Key()).Version; got != a.Version {
			t.Fatalf("Get version %s, Update returned %s", got, a.Version)
		}
	}
	// An update that changes nothing still makes a new version.
	if err := s.Update(ctx(t), a); err != nil {
		t.Fatalf("no-op Update: %v", err)
	}
	note("no-op update a", a.Version)
	// A recreated record does not get its old version back.
	if err := s.Delete(ctx(t), b.Key()); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	b2 := rec("MeshRetry", "default", "b")
	mustCreate(t, s, b2)
	note("recreate b", b2.Version)
}

func testTimes(t *testing.T, s store.Store) {
	mustCreate(t, s, mesh("default"))
	before := time.Now().Add(-time.Second)
	r := rec("MeshRetry", "default", "r")
	mustCreate(t, s, r)
	after := time.Now().Add(time.Second)
	created := mustGet(t, s, r.Key())
	if created.CreationTime.Before(before) || created.CreationTime.After(after) {
		t.Fatalf("creation time %v not near now %v", created.CreationTime, before)
	}
	time.Sleep(5 * time.Millisecond)
	upd := created.Clone()
	upd.Spec = []byte(`{"v":2}`)
	if err := s.Update(ctx(t), upd); err != nil {
		t.Fatalf("Update: %v", err)
	}
	got := mustGet(t, s, r.Key())
	if !got.CreationTime.Equal(created.CreationTime) {
		t.Errorf("Update moved creation time %v -> %v", created.CreationTime, got.CreationTime)
	}
	if !got.ModificationTime.After(created.ModificationTime) {
		t.Errorf("Update did not move modification time: %v -> %v", created.ModificationTime, got.ModificationTime)
	}
	if !upd.CreationTime.Equal(got.CreationTime) || !upd.ModificationTime.Equal(got.ModificationTime) {
		t.Errorf("Update set times %v/%v on the record, stored %v/%v",
			upd.CreationTime, upd.ModificationTime, got.CreationTime, got.ModificationTime)
	}
	// A caller-supplied creation time is not trusted on update.
	forged := got.Clone()
	forged.CreationTime = time.Unix(0, 0)
	if err := s.Update(ctx(t), forged); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got2 := mustGet(t, s, r.Key()); !got2.CreationTime.Equal(created.CreationTime) {
		t.Errorf("Update took the caller's creation time: %v", got2.CreationTime)
	}
}

func testRoundTrip(t *testing.T, s store.Store) {
	mustCreate(t, s, mesh("default"))
	specs := [][]byte{
		[]byte(`{}`),
		[]byte(`{"a": 1,  "b" : [true, null, 1.50, "x"]}`), // whitespace and number forms kept
		[]byte("{\"s\":\"line\\nbreak \\\"quoted\\\" \\u00e9 é ✓ 🚀\"}"),
		[]byte(`{"big":"` + repeat("x", 70000) + `"}`),
	}
	for i, spec := range specs {
		r := rec("MeshRetry", "default", "r"+string(rune('a'+i)))
		r.Spec = append([]byte(nil), spec...)
		mustCreate(t, s, r)
		if got := mustGet(t, s, r.Key()); string(got.Spec) != string(spec) {
			t.Errorf("spec %d: got %q, want %q", i, trim(got.Spec), trim(spec))
		}
	}
	noLabels := rec("MeshRetry", "default", "no-labels")
	mustCreate(t, s, noLabels)
	if got := mustGet(t, s, noLabels.Key()); len(got.Labels) != 0 {
		t.Errorf("record without labels came back with %v", got.Labels)
	}
	labels := map[string]string{
		"kuma.io/zone":          "zone-1",
		"empty":                 "",
		"k8s.kuma.io/namespace": "kuma-system",
		"números":               "ünïcödé ✓",
		`q"uote`:                `"double" 'single' \back`,
		"digits":                "0123",
		"true":                  "true",
	}
	r := rec("MeshRetry", "default", "labelled")
	r.Labels = labels
	mustCreate(t, s, r)
	got := mustGet(t, s, r.Key())
	if d := sameRecord(got, r); d != "" {
		t.Errorf("labels: %s (got %v)", d, got.Labels)
	}
	if v, ok := got.Labels["empty"]; !ok || v != "" {
		t.Errorf("empty label value lost: %v", got.Labels)
	}
}

func repeat(s string, n int) string {
	b := make([]byte, 0, len(s)*n)
	for range n {
		b = append(b, s...)
	}
	return string(b)
}

func trim(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}
