package storetest

import (
	"fmt"
	"sort"
	"testing"

	"github.com/trellis-mesh/trellis/internal/store"
)

func key(kind, meshName, name string) store.Key {
	return store.Key{Kind: kind, Mesh: meshName, Name: name}
}

// checkList lists q and compares the page's keys and total.
func checkList(t *testing.T, s store.Store, q store.Query, total int, want ...store.Key) {
	t.Helper()
	p := mustList(t, s, q)
	if got := keysOf(p); !sameKeys(got, want) {
		t.Errorf("List %+v:\n got %v\nwant %v", q, got, want)
	}
	if p.Total != total {
		t.Errorf("List %+v: total %d, want %d", q, p.Total, total)
	}
}

func testListKindMesh(t *testing.T, s store.Store) {
	mustCreate(t, s, mesh("a"), mesh("b"),
		rec("MeshRetry", "a", "r1"), rec("MeshRetry", "a", "r2"), rec("MeshRetry", "b", "r1"),
		rec("MeshTimeout", "a", "t1"),
		&store.Record{Kind: "Zone", Name: "z", Spec: []byte(`{}`)})

	checkList(t, s, store.Query{Kind: "MeshRetry"}, 3,
		key("MeshRetry", "a", "r1"), key("MeshRetry", "b", "r1"), key("MeshRetry", "a", "r2"))
	checkList(t, s, store.Query{Kind: "MeshRetry", Mesh: "a"}, 2,
		key("MeshRetry", "a", "r1"), key("MeshRetry", "a", "r2"))
	checkList(t, s, store.Query{Kind: "MeshRetry", Mesh: "b"}, 1, key("MeshRetry", "b", "r1"))
	checkList(t, s, store.Query{Kind: "MeshTimeout"}, 1, key("MeshTimeout", "a", "t1"))
	checkList(t, s, store.Query{Kind: store.MeshKind}, 2, key(store.MeshKind, "", "a"), key(store.MeshKind, "", "b"))
	checkList(t, s, store.Query{Kind: "Zone"}, 1, key("Zone", "", "z"))
	checkList(t, s, store.Query{Kind: "MeshRetry", Mesh: "missing"}, 0)
	checkList(t, s, store.Query{Kind: "Unknown"}, 0)

	// Listed records are whole.
	p := mustList(t, s, store.Query{Kind: "MeshRetry", Mesh: "b"})
	if d := sameRecord(p.Items[0], mustGet(t, s, key("MeshRetry", "b", "r1"))); d != "" {
		t.Errorf("listed record differs from Get: %s", d)
	}
}

func testListNameContains(t *testing.T, s store.Store) {
	names := []string{"web-1", "web-2", "Web-3", "backend", "a%b", "a_b", "axb", `a\b`, "a%%b", "ünï-web"}
	mustCreate(t, s, mesh("default"), mesh("other"))
	for _, n := range names {
		mustCreate(t, s, rec("MeshRetry", "default", n))
	}
	mustCreate(t, s, rec("MeshRetry", "other", "web-9"))
	d := func(n string) store.Key { return key("MeshRetry", "default", n) }
	q := func(sub string) store.Query {
		return store.Query{Kind: "MeshRetry", Mesh: "default", NameContains: sub}
	}

	checkList(t, s, q("web"), 3, d("web-1"), d("web-2"), d("ünï-web"))
	checkList(t, s, q("Web"), 1, d("Web-3"))
	checkList(t, s, q("%"), 2, d("a%%b"), d("a%b"))
	checkList(t, s, q("%%"), 1, d("a%%b"))
	checkList(t, s, q("_"), 1, d("a_b"))
	checkList(t, s, q(`\`), 1, d(`a\b`))
	checkList(t, s, q("ünï"), 1, d("ünï-web"))
	checkList(t, s, q("web-1"), 1, d("web-1"))
	checkList(t, s, q("nothing"), 0)
	checkList(t, s, store.Query{Kind: "MeshRetry", NameContains: "web-"}, 3,
		d("web-1"), d("web-2"), key("MeshRetry", "other", "web-9"))
	if p := mustList(t, s, q("")); p.Total != len(names) {
		t.Errorf("empty NameContains: total %d, want %d", p.Total, len(names))
	}
}

func testListLabels(t *testing.T, s store.Store) {
	mustCreate(t, s, mesh("default"), mesh("other"))
	add := func(meshName, name string, labels map[string]string) {
		r := rec("MeshRetry", meshName, name)
		r.Labels = labels
		mustCreate(t, s, r)
	}
	add("default", "prod-a", map[string]string{"env": "prod", "team": "a"})
	add("default", "prod-b", map[string]string{"env": "prod", "team": "b"})
	add("default", "dev", map[string]string{"env": "dev"})
	add("default", "empty-env", map[string]string{"env": ""})
	add("default", "none", nil)
	add("default", "odd", map[string]string{`$.x`: `a"b`, "a[0]": "1", `k"q`: "ü", "kuma.io/zone": "z-1"})
	add("other", "prod-c", map[string]string{"env": "prod"})
	d := func(n string) store.Key { return key("MeshRetry", "default", n) }
	q := func(labels map[string]string) store.Query {
		return store.Query{Kind: "MeshRetry", Mesh: "default", Labels: labels}
	}

	checkList(t, s, q(map[string]string{"env": "prod"}), 2, d("prod-a"), d("prod-b"))
	checkList(t, s, q(map[string]string{"env": "prod", "team": "a"}), 1, d("prod-a"))
	checkList(t, s, q(map[string]string{"env": "prod", "team": "c"}), 0)
	checkList(t, s, q(map[string]string{"env": ""}), 1, d("empty-env"))
	checkList(t, s, q(map[string]string{"missing": "x"}), 0)
	checkList(t, s, q(map[string]string{`$.x`: `a"b`}), 1, d("odd"))
	checkList(t, s, q(map[string]string{"a[0]": "1"}), 1, d("odd"))
	checkList(t, s, q(map[string]string{`k"q`: "ü", "kuma.io/zone": "z-1"}), 1, d("odd"))
	checkList(t, s, q(map[string]string{"a[0]": "01"}), 0)
	checkList(t, s, q(map[string]string{}), 6,
		d("dev"), d("empty-env"), d("none"), d("odd"), d("prod-a"), d("prod-b"))
	checkList(t, s, store.Query{Kind: "MeshRetry", Labels: map[string]string{"env": "prod"}}, 3,
		d("prod-a"), d("prod-b"), key("MeshRetry", "other", "prod-c"))
	checkList(t, s, store.Query{Kind: "MeshRetry", NameContains: "-b", Labels: map[string]string{"env": "prod"}}, 1,
		d("prod-b"))
}

func testListOrder(t *testing.T, s store.Store) {
	meshes := []string{"m2", "m1", "m10", "M0"}
	names := []string{"b", "a", "B", "_x", "a-b", "a.b", "aa", "Ä", "z", "a b", "0"}
	for _, m := range meshes {
		mustCreate(t, s, mesh(m))
	}
	var want []store.Key
	for _, n := range names {
		for _, m := range meshes {
			mustCreate(t, s, rec("MeshRetry", m, n))
			want = append(want, key("MeshRetry", m, n))
		}
	}
	// Order is byte-wise: by name, then mesh.
	sort.Slice(want, func(i, j int) bool {
		if want[i].Name != want[j].Name {
			return want[i].Name < want[j].Name
		}
		return want[i].Mesh < want[j].Mesh
	})
	checkList(t, s, store.Query{Kind: "MeshRetry"}, len(want), want...)
}

func testListPagination(t *testing.T, s store.Store) {
	mustCreate(t, s, mesh("default"), mesh("other"))
	var all []store.Key
	for i := range 25 {
		n := fmt.Sprintf("r-%02d", i)
		r := rec("MeshRetry", "default", n)
		if i%2 == 0 {
			r.Labels = map[string]string{"even": "yes"}
		}
		mustCreate(t, s, r)
		all = append(all, r.Key())
	}
	mustCreate(t, s, rec("MeshRetry", "other", "zz"))
	q := func(offset, limit int) store.Query {
		return store.Query{Kind: "MeshRetry", Mesh: "default", Offset: offset, Limit: limit}
	}
	checkList(t, s, q(0, 10), 25, all[:10]...)
	checkList(t, s, q(10, 10), 25, all[10:20]...)
	checkList(t, s, q(20, 10), 25, all[20:]...)
	checkList(t, s, q(25, 10), 25)
	checkList(t, s, q(100, 10), 25)
	checkList(t, s, q(0, 0), 25, all...)
	checkList(t, s, q(5, 0), 25, all[5:]...)
	checkList(t, s, q(24, 1), 25, all[24])
	checkList(t, s, q(0, 1000), 25, all...)

	// Pages of a filtered list count the filtered records.
	var even []store.Key
	for i := 0; i < 25; i += 2 {
		even = append(even, all[i])
	}
	filtered := store.Query{Kind: "MeshRetry", Mesh: "default", Labels: map[string]string{"even": "yes"}, Offset: 10, Limit: 5}
	checkList(t, s, filtered, 13, even[10:]...)
	named := store.Query{Kind: "MeshRetry", NameContains: "r-1", Offset: 2, Limit: 3}
	checkList(t, s, named, 10, all[12:15]...)

	// Walking pages visits every record once.
	var walked []store.Key
	for off := 0; ; off += 7 {
		p := mustList(t, s, store.Query{Kind: "MeshRetry", Offset: off, Limit: 7})
		if len(p.Items) == 0 {
			break
		}
		walked = append(walked, keysOf(p)...)
	}
	if want := append(append([]store.Key(nil), all...), key("MeshRetry", "other", "zz")); !sameKeys(walked, want) {
		t.Errorf("walking pages: got %v, want %v", walked, want)
	}
}
