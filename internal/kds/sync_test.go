package kds_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/kds"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/testing/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const timeoutSpec = `{"targetRef":{"kind":"Mesh"},"to":[{"targetRef":{"kind":"Mesh"},"default":{"connectionTimeout":"%s"}}]}`

// seedGlobal puts a mesh, two policies, a mesh secret and the global
// secrets that must stay home.
func seedGlobal(t *testing.T, g store.Store) {
	put(t, g, "Mesh", "", "m1", `{}`, nil)
	put(t, g, "MeshTimeout", "m1", "t1", fmt.Sprintf(timeoutSpec, "1s"), map[string]string{"kuma.io/origin": "global"})
	put(t, g, "MeshTimeout", "m1", "t2", fmt.Sprintf(timeoutSpec, "2s"), nil)
	put(t, g, "Secret", "m1", "m1.ca-builtin-cert-ca-1", `{"data":"Y2VydA=="}`, nil)
	put(t, g, "GlobalSecret", "", "user-token-signing-key-1", `{"data":"a2V5"}`, nil)
	put(t, g, "GlobalSecret", "", "inter-cp", `{"data":"eA=="}`, nil)
}

func TestInitialSyncBothWays(t *testing.T) {
	gst, zst := memoryStore(t), sqliteStore(t)
	seedGlobal(t, gst)
	g := startGlobal(t, gst)
	// The zone had a dataplane before it ever connected (its mesh too).
	put(t, zst, "Mesh", "", "m1", `{}`, nil)
	put(t, zst, "Dataplane", "m1", "dp1", `{"networking":{"address":"10.0.0.1"}}`, nil)
	z := startZone(t, g, "zone-1", zst)

	t1, t2 := kds.HashedName("m1", "t1"), kds.HashedName("m1", "t2")
	eventually(t, 5*time.Second, wantNames(t, zst, "MeshTimeout", "m1/"+t1, "m1/"+t2))
	eventually(t, 5*time.Second, wantNames(t, gst, "Dataplane", "m1/zone-1.dp1"))
	// The signing keys stay home; the zone-token key's public part travels.
	eventually(t, 5*time.Second, wantNames(t, zst, "GlobalSecret", "/inter-cp", "/zone-token-signing-public-key-1"))
	eventually(t, 5*time.Second, wantNames(t, zst, "Secret", "m1/m1.ca-builtin-cert-ca-1"))
	if !z.client.Connected() {
		t.Errorf("the client does not report itself connected")
	}

	pol := get(t, zst, "MeshTimeout", "m1", t1)
	want := map[string]string{"kuma.io/origin": "global", "kuma.io/display-name": "t1", "kuma.io/mesh": "m1"}
	for k, v := range want {
		if pol.Labels[k] != v {
			t.Errorf("zone copy of t1: label %s = %q, want %q (labels %v)", k, pol.Labels[k], v, pol.Labels)
		}
	}
	dp := get(t, gst, "Dataplane", "m1", "zone-1.dp1")
	want = map[string]string{"kuma.io/origin": "zone", "kuma.io/zone": "zone-1", "kuma.io/display-name": "dp1"}
	for k, v := range want {
		if dp.Labels[k] != v {
			t.Errorf("global copy of dp1: label %s = %q, want %q (labels %v)", k, dp.Labels[k], v, dp.Labels)
		}
	}
	if m := get(t, zst, "Mesh", "", "m1"); m == nil || m.Labels["kuma.io/origin"] != "global" {
		t.Errorf("the zone's mesh m1 was not replaced by the global's copy: %+v", m)
	}
	// The global recorded the zone and its connection.
	if get(t, gst, "Zone", "", "zone-1") == nil {
		t.Errorf("no Zone zone-1 at the global")
	}
	eventually(t, 5*time.Second, func() error {
		zi, err := insights.GetZone(t.Context(), gst, "zone-1")
		if err != nil || !zi.Online() || zi.Last().Status.Total.ResponsesAcknowledged == 0 || zi.Last().Status.Stat["MeshTimeout"] == nil {
			return fmt.Errorf("zone insight %+v %v", zi, err)
		}
		return nil
	})

	// Live changes both ways.
	put(t, gst, "MeshTimeout", "m1", "t1", fmt.Sprintf(timeoutSpec, "9s"), nil)
	eventually(t, 2*time.Second, func() error {
		if got := string(get(t, zst, "MeshTimeout", "m1", t1).Spec); got != fmt.Sprintf(timeoutSpec, "9s") {
			return fmt.Errorf("zone copy of t1: %s", got)
		}
		return nil
	})
	del(t, zst, "Dataplane", "m1", "dp1")
	eventually(t, 2*time.Second, wantNames(t, gst, "Dataplane"))
	z.stop()
	eventually(t, 5*time.Second, func() error {
		zi, _ := insights.GetZone(t.Context(), gst, "zone-1")
		if zi == nil || zi.Online() {
			return fmt.Errorf("the insight still shows zone-1 connected: %+v", zi)
		}
		return nil
	})
}

// partition runs the reconnect scenario: changes and deletes on both sides
// while the zone is cut off, then convergence without duplicates.
func partition(t *testing.T, gst, zst store.Store) {
	seedGlobal(t, gst)
	g := startGlobal(t, gst)
	z := startZone(t, g, "zone-1", zst)
	t1, t2, t3 := kds.HashedName("m1", "t1"), kds.HashedName("m1", "t2"), kds.HashedName("m1", "t3")
	eventually(t, 5*time.Second, wantNames(t, zst, "MeshTimeout", "m1/"+t1, "m1/"+t2))
	for _, n := range []string{"dp1", "dp2", "dp3"} {
		put(t, zst, "Dataplane", "m1", n, `{"networking":{"address":"10.0.0.1"}}`, nil)
	}
	eventually(t, 5*time.Second, wantNames(t, gst, "Dataplane", "m1/zone-1.dp1", "m1/zone-1.dp2", "m1/zone-1.dp3"))

	z.stop() // the partition
	put(t, gst, "MeshTimeout", "m1", "t1", fmt.Sprintf(timeoutSpec, "5s"), nil)
	del(t, gst, "MeshTimeout", "m1", "t2")
	put(t, gst, "MeshTimeout", "m1", "t3", fmt.Sprintf(timeoutSpec, "3s"), nil)
	put(t, gst, "Mesh", "", "m2", `{}`, nil)
	del(t, zst, "Dataplane", "m1", "dp1")
	put(t, zst, "Dataplane", "m1", "dp3", `{"networking":{"address":"10.0.0.3"}}`, nil)
	put(t, zst, "Dataplane", "m1", "dp4", `{"networking":{"address":"10.0.0.4"}}`, nil)
	g.restart() // the global restarts during the partition too
	time.Sleep(200 * time.Millisecond)
	if got := names(t, zst, "MeshTimeout"); len(got) != 2 {
		t.Fatalf("the zone changed while cut off: %v", got)
	}

	z.start()
	eventually(t, 5*time.Second, wantNames(t, zst, "MeshTimeout", "m1/"+t1, "m1/"+t3))
	eventually(t, 5*time.Second, wantNames(t, zst, "Mesh", "/m1", "/m2"))
	eventually(t, 5*time.Second, wantNames(t, gst, "Dataplane", "m1/zone-1.dp2", "m1/zone-1.dp3", "m1/zone-1.dp4"))
	if got := string(get(t, zst, "MeshTimeout", "m1", t1).Spec); got != fmt.Sprintf(timeoutSpec, "5s") {
		t.Errorf("zone copy of t1 after reconnect: %s", got)
	}
	if got := specOf(get(t, gst, "Dataplane", "m1", "zone-1.dp3")); fmt.Sprint(got) != "map[networking:map[address:10.0.0.3]]" {
		t.Errorf("global copy of dp3 after reconnect: %v", got)
	}
	// Stable: nothing more arrives, no duplicates under other names.
	time.Sleep(300 * time.Millisecond)
	eventually(t, time.Second, wantNames(t, zst, "MeshTimeout", "m1/"+t1, "m1/"+t3))
	eventually(t, time.Second, wantNames(t, gst, "Dataplane", "m1/zone-1.dp2", "m1/zone-1.dp3", "m1/zone-1.dp4"))

	// A mesh deleted on the global disappears from the zone with its policies.
	z.stop()
	del(t, gst, "Mesh", "", "m2")
	z.start()
	eventually(t, 5*time.Second, wantNames(t, zst, "Mesh", "/m1"))
}

func TestPartitionMemoryAndSQLite(t *testing.T) { partition(t, memoryStore(t), sqliteStore(t)) }

func TestPartitionPostgresGlobal(t *testing.T) {
	url := pgtest.Start(t)
	st, err := openPostgres(t, url)
	if err != nil {
		t.Fatal(err)
	}
	partition(t, st, memoryStore(t))
}

func TestThousandResourcesWithinFiveSeconds(t *testing.T) {
	gst, zst := memoryStore(t), sqliteStore(t)
	put(t, gst, "Mesh", "", "m1", `{}`, nil)
	for i := range 1000 {
		put(t, gst, "MeshTimeout", "m1", fmt.Sprintf("t-%04d", i), fmt.Sprintf(timeoutSpec, fmt.Sprintf("%ds", i+1)), nil)
	}
	g := startGlobal(t, gst)
	start := time.Now()
	startZone(t, g, "zone-1", zst)
	eventually(t, slowdown*5*time.Second, func() error {
		page, err := zst.List(t.Context(), store.Query{Kind: "MeshTimeout", Limit: 1})
		if err != nil {
			return err
		}
		if page.Total != 1000 {
			return fmt.Errorf("%d of 1000 MeshTimeouts in the zone", page.Total)
		}
		return nil
	})
	t.Logf("1,000 MeshTimeouts synced in %s", time.Since(start).Round(time.Millisecond))
}

func TestOtherZonesIngressesReachAZone(t *testing.T) {
	gst := memoryStore(t)
	put(t, gst, "Mesh", "", "m1", `{}`, nil)
	g := startGlobal(t, gst)
	z1, z2 := memoryStore(t), memoryStore(t)
	startZone(t, g, "zone-1", z1)
	startZone(t, g, "zone-2", z2)
	put(t, z1, "ZoneIngress", "", "ingress", `{"networking":{"address":"10.1.0.1","advertisedAddress":"192.0.2.1","port":10001,"advertisedPort":10001}}`, nil)
	put(t, z2, "ZoneIngress", "", "ingress", `{"networking":{"address":"10.2.0.1","port":10001}}`, nil)
	eventually(t, 5*time.Second, wantNames(t, gst, "ZoneIngress", "/zone-1.ingress", "/zone-2.ingress"))
	// Each zone gets the other's ingress, never its own back.
	eventually(t, 5*time.Second, wantNames(t, z2, "ZoneIngress", "/ingress", "/zone-1.ingress"))
	eventually(t, 5*time.Second, wantNames(t, z1, "ZoneIngress", "/ingress", "/zone-2.ingress"))
	copyIn2 := get(t, z2, "ZoneIngress", "", "zone-1.ingress")
	if copyIn2.Labels["kuma.io/zone"] != "zone-1" || copyIn2.Labels["kuma.io/origin"] != "global" {
		t.Errorf("zone-1's ingress in zone-2: labels %v", copyIn2.Labels)
	}
	del(t, z1, "ZoneIngress", "", "ingress")
	eventually(t, 5*time.Second, wantNames(t, z2, "ZoneIngress", "/ingress"))
}

func TestACopyDeletedByOthersComesBack(t *testing.T) {
	gst, zst := memoryStore(t), memoryStore(t)
	put(t, gst, "Mesh", "", "m1", `{}`, nil)
	g := startGlobal(t, gst)
	startZone(t, g, "zone-1", zst)
	eventually(t, 5*time.Second, wantNames(t, zst, "Mesh", "/m1"))
	put(t, zst, "Dataplane", "m1", "dp1", `{"networking":{"address":"10.0.0.1"}}`, nil)
	eventually(t, 5*time.Second, wantNames(t, gst, "Dataplane", "m1/zone-1.dp1"))
	// A cleanup job at the global removes the zone's copy: the zone resends it.
	del(t, gst, "Dataplane", "m1", "zone-1.dp1")
	eventually(t, 5*time.Second, wantNames(t, gst, "Dataplane", "m1/zone-1.dp1"))
}

func TestNACKCarriesTheErrorAndTheSenderRetries(t *testing.T) {
	gst, zst := memoryStore(t), memoryStore(t)
	g := startGlobal(t, gst)
	// The zone has a mesh the global does not: its Dataplane is refused.
	put(t, zst, "Mesh", "", "local", `{}`, nil)
	put(t, zst, "Dataplane", "local", "dp1", `{"networking":{"address":"10.0.0.1"}}`, nil)
	startZone(t, g, "zone-1", zst)
	eventually(t, 5*time.Second, func() error {
		zi, err := insights.GetZone(t.Context(), gst, "zone-1")
		if err != nil {
			return err
		}
		if last := zi.Last(); last == nil || last.Status.Stat["Dataplane"] == nil || last.Status.Stat["Dataplane"].ResponsesRejected == 0 {
			return fmt.Errorf("no rejected Dataplane response in the insight: %+v", zi.Last())
		}
		return nil
	})
	if got := names(t, gst, "Dataplane"); len(got) != 0 {
		t.Fatalf("the global stored a Dataplane of a mesh it lacks: %v", got)
	}
	// Once the mesh exists at the global the resend goes through.
	put(t, gst, "Mesh", "", "local", `{}`, nil)
	eventually(t, 5*time.Second, wantNames(t, gst, "Dataplane", "local/zone-1.dp1"))
}
