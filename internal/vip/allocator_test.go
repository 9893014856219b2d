package vip_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/memory"
	"github.com/trellis-mesh/trellis/internal/store/postgres"
	"github.com/trellis-mesh/trellis/internal/store/sqlite"
	"github.com/trellis-mesh/trellis/internal/testing/pgtest"
	"github.com/trellis-mesh/trellis/internal/vip"
)

// TestMain stops the package's shared PostgreSQL server after the tests.
func TestMain(m *testing.M) { pgtest.Main(m) }

func withMesh(t *testing.T, st store.Store, mesh string) store.Store {
	t.Helper()
	err := st.Create(context.Background(), &store.Record{Kind: store.MeshKind, Name: mesh, Spec: []byte(`{}`)})
	if err != nil {
		t.Fatalf("creating mesh %q: %v", mesh, err)
	}
	return st
}

func syncVIPs(t *testing.T, a *vip.Allocator, mesh string, services ...string) map[string]proxymodel.VIP {
	t.Helper()
	table, err := a.Sync(context.Background(), mesh, services)
	if err != nil {
		t.Fatalf("Sync(%v): %v", services, err)
	}
	return table
}

func TestParseConfig(t *testing.T) {
	c, err := vip.ParseConfig("Mesh.", "240.0.0.0/4", "fd00:fd00::/96")
	if err != nil {
		t.Fatal(err)
	}
	if c.Domain != "mesh" || c.CIDR.String() != "240.0.0.0/4" || c.CIDRv6.String() != "fd00:fd00::/96" {
		t.Fatalf("config = %+v", c)
	}
	for _, tc := range []struct{ domain, cidr, v6, want string }{
		{"", "240.0.0.0/4", "", "domain"},
		{"my_mesh", "240.0.0.0/4", "", "domain"},
		{"mesh", "fd00::/8", "", "CIDR"},
		{"mesh", "240.0.0.0/31", "", "CIDR"},
		{"mesh", "nope", "", "CIDR"},
		{"mesh", "240.0.0.0/4", "10.0.0.0/8", "CIDRv6"},
		{"mesh", "240.0.0.0/4", "fd00::/112", "CIDRv6"},
	} {
		if _, err := vip.ParseConfig(tc.domain, tc.cidr, tc.v6); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%q, %q, %q) = %v, want an error naming %s", tc.domain, tc.cidr, tc.v6, err, tc.want)
		}
	}
}

func TestAllocatesSequentiallyWithIPv6AndName(t *testing.T) {
	a := vip.New(withMesh(t, memory.New(), "default"), vip.DefaultConfig(), nil)
	table := syncVIPs(t, a, "default", "web", "backend", "backend")
	want := map[string]proxymodel.VIP{
		"backend": {Service: "backend", Name: "backend.mesh", IPv4: "240.0.0.1", IPv6: "fd00:fd00::f000:1"},
		"web":     {Service: "web", Name: "web.mesh", IPv4: "240.0.0.2", IPv6: "fd00:fd00::f000:2"},
	}
	if fmt.Sprint(table) != fmt.Sprint(want) {
		t.Fatalf("table = %v, want %v", table, want)
	}
	// A new service takes the next address; the others keep theirs.
	table = syncVIPs(t, a, "default", "web", "backend", "aaa")
	if table["aaa"].IPv4 != "240.0.0.3" || table["backend"].IPv4 != "240.0.0.1" || table["web"].IPv4 != "240.0.0.2" {
		t.Fatalf("table = %v", table)
	}
}

func TestNoIPv6WithoutCIDRv6(t *testing.T) {
	cfg, err := vip.ParseConfig("mesh", "10.99.0.0/16", "")
	if err != nil {
		t.Fatal(err)
	}
	a := vip.New(withMesh(t, memory.New(), "default"), cfg, nil)
	table := syncVIPs(t, a, "default", "backend")
	if v := table["backend"]; v.IPv4 != "10.99.0.1" || v.IPv6 != "" {
		t.Fatalf("VIP = %+v", v)
	}
}

// stability checks that allocations survive a new allocator (a restarted
// control plane) on a reopened store.
func stability(t *testing.T, open func() store.Store) {
	st := withMesh(t, open(), "default")
	first := syncVIPs(t, vip.New(st, vip.DefaultConfig(), nil), "default", "a", "b", "c")
	st.Close()
	st = open()
	defer st.Close()
	// Listed in another order, with one more: the old ones keep theirs.
	again := syncVIPs(t, vip.New(st, vip.DefaultConfig(), nil), "default", "d", "c", "b", "a")
	for _, svc := range []string{"a", "b", "c"} {
		if again[svc] != first[svc] {
			t.Errorf("%s: %v after the restart, %v before", svc, again[svc], first[svc])
		}
	}
	if again["d"].IPv4 != "240.0.0.4" {
		t.Errorf("d = %v, want 240.0.0.4", again["d"])
	}
}

func TestStableAcrossRestartSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trellis.db")
	stability(t, func() store.Store {
		st, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

func openPG(t *testing.T, url string) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestStableAcrossRestartPostgres(t *testing.T) {
	url := pgtest.Start(t)
	stability(t, func() store.Store { return openPG(t, url) })
}

// Two control planes on one PostgreSQL allocate for the same new services
// at the same time: they end up with one address per service, the same
// on both, and no address given twice.
func TestTwoInstancesRacePostgres(t *testing.T) {
	url := pgtest.Start(t)
	st1 := withMesh(t, openPG(t, url), "default")
	st2 := openPG(t, url)
	t.Cleanup(func() { st1.Close(); st2.Close() })
	a1 := vip.New(st1, vip.DefaultConfig(), nil)
	a2 := vip.New(st2, vip.DefaultConfig(), nil)
	race(t, a1, a2)
}

func TestTwoAllocatorsRaceSQLite(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "trellis.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	withMesh(t, st, "default")
	race(t, vip.New(st, vip.DefaultConfig(), nil), vip.New(st, vip.DefaultConfig(), nil))
}

func race(t *testing.T, a1, a2 *vip.Allocator) {
	t.Helper()
	var services []string
	for i := range 20 {
		services = append(services, fmt.Sprintf("svc-%02d", i))
	}
	results := make([]map[string]proxymodel.VIP, 2)
	var wg sync.WaitGroup
	for i, a := range []*vip.Allocator{a1, a2} {
		wg.Go(func() {
			// Each grows the set step by step, interleaving with the other.
			for n := 1; n <= len(services); n++ {
				table, err := a.Sync(context.Background(), "default", services[:n])
				if err != nil {
					t.Errorf("allocator %d: %v", i, err)
					return
				}
				results[i] = table
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := map[string]string{}
	for _, svc := range services {
		v1, v2 := results[0][svc], results[1][svc]
		if v1 != v2 || v1.IPv4 == "" {
			t.Errorf("%s: %v on one, %v on the other", svc, v1, v2)
		}
		if other, dup := seen[v1.IPv4]; dup {
			t.Errorf("%s and %s share %s", svc, other, v1.IPv4)
		}
		seen[v1.IPv4] = svc
	}
}

func TestReleaseAfterGone(t *testing.T) {
	st := withMesh(t, memory.New(), "default")
	cfg := vip.DefaultConfig()
	cfg.ReleaseAfter = 200 * time.Millisecond
	a := vip.New(st, cfg, nil)
	first := syncVIPs(t, a, "default", "a", "b")
	// b goes: it has no VIP in the table, but keeps its address for a while.
	if table := syncVIPs(t, a, "default", "a"); len(table) != 1 || table["a"] != first["a"] {
		t.Fatalf("table = %v", table)
	}
	if table := syncVIPs(t, a, "default", "a", "b"); table["b"] != first["b"] {
		t.Fatalf("b came back at %v, was %v", table["b"], first["b"])
	}
	syncVIPs(t, a, "default", "a")
	time.Sleep(250 * time.Millisecond)
	syncVIPs(t, a, "default", "a") // releases b
	// A new service may now take b's address.
	if table := syncVIPs(t, a, "default", "a", "c"); table["c"].IPv4 != first["b"].IPv4 {
		t.Fatalf("c = %v, want b's released %s", table["c"], first["b"].IPv4)
	}
}

func TestRepairsBadRecords(t *testing.T) {
	st := withMesh(t, memory.New(), "default")
	ctx := context.Background()
	spec := `{"vips":{"a":{"ip":"240.0.0.7"},"b":{"ip":"240.0.0.7"},"c":{"ip":"10.0.0.1"},"d":{"ip":"junk"}}}`
	if err := st.Create(ctx, &store.Record{Kind: vip.Kind, Mesh: "default", Name: vip.RecordName, Spec: []byte(spec)}); err != nil {
		t.Fatal(err)
	}
	table := syncVIPs(t, vip.New(st, vip.DefaultConfig(), slog.New(slog.DiscardHandler)), "default", "a", "b", "c", "d")
	seen := map[string]bool{}
	for svc, v := range table {
		ip := netip.MustParseAddr(v.IPv4)
		if !netip.MustParsePrefix("240.0.0.0/4").Contains(ip) || seen[v.IPv4] {
			t.Errorf("%s = %s: outside the CIDR or shared", svc, v.IPv4)
		}
		seen[v.IPv4] = true
	}
	if table["a"].IPv4 != "240.0.0.7" || len(table) != 4 {
		t.Errorf("table = %v, want a to keep 240.0.0.7 and four VIPs", table)
	}
	// An undecodable record is replaced.
	rec, _ := st.Get(ctx, store.Key{Kind: vip.Kind, Mesh: "default", Name: vip.RecordName})
	rec.Spec = []byte(`[1,2]`)
	if err := st.Update(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if table := syncVIPs(t, vip.New(st, vip.DefaultConfig(), nil), "default", "z"); table["z"].IPv4 != "240.0.0.1" {
		t.Errorf("table = %v", table)
	}
}

func TestExhaustedCIDR(t *testing.T) {
	cfg, err := vip.ParseConfig("mesh", "10.0.0.0/30", "")
	if err != nil {
		t.Fatal(err)
	}
	a := vip.New(withMesh(t, memory.New(), "default"), cfg, nil)
	// A /30 has two usable addresses (.1, .2): the third service gets none.
	table := syncVIPs(t, a, "default", "a", "b", "c")
	if len(table) != 2 || table["a"].IPv4 != "10.0.0.1" || table["b"].IPv4 != "10.0.0.2" {
		t.Fatalf("table = %v", table)
	}
}

func TestMissingMeshIsAnError(t *testing.T) {
	a := vip.New(memory.New(), vip.DefaultConfig(), nil)
	if _, err := a.Sync(context.Background(), "nope", []string{"a"}); err == nil {
		t.Fatal("Sync in a missing mesh succeeded")
	}
}
