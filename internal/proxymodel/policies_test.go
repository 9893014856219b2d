package proxymodel_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// timeout is a MeshTimeout spec for the whole mesh with an idle timeout.
func timeout(idle string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"targetRef":{"kind":"Mesh"},"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":%q}}]}`, idle))
}

func idleTimeout(t *testing.T, m *proxymodel.Matched) string {
	t.Helper()
	r := m.Outbound("backend")
	if r == nil {
		t.Fatal("no to[] rule for backend")
	}
	var c struct {
		IdleTimeout string `json:"idleTimeout"`
	}
	if err := json.Unmarshal(r.Conf, &c); err != nil {
		t.Fatal(err)
	}
	return c.IdleTimeout
}

// TestSnapshotMatch checks that MeshSnapshot.Match gives what policy.Match
// gives, concurrently, and that a new snapshot, or a copy given other
// policies, is matched against its own policies.
func TestSnapshotMatch(t *testing.T) {
	web := dataplane(t, webDP)
	snap := &proxymodel.MeshSnapshot{
		Mesh:       "default",
		Dataplanes: []proxymodel.NamedDataplane{web},
		Policies:   map[string][]proxymodel.PolicyItem{"MeshTimeout": {{Name: "t", Spec: timeout("10s")}}},
	}
	want, err := policy.Match(policy.Dataplane{Name: web.Name, Labels: web.Labels, Spec: web.Spec}, snap.Policies["MeshTimeout"])
	if err != nil {
		t.Fatal(err)
	}
	wantJS, _ := json.Marshal(want)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got, err := snap.Match("MeshTimeout", web)
			if err != nil {
				t.Error(err)
				return
			}
			if js, _ := json.Marshal(got); string(js) != string(wantJS) {
				t.Errorf("got %s, want %s", js, wantJS)
			}
		})
	}
	wg.Wait()

	// A copy of the snapshot with other policies of the kind.
	other := *snap
	other.Policies = map[string][]proxymodel.PolicyItem{"MeshTimeout": {{Name: "t", Spec: timeout("20s")}}}
	for _, c := range []struct {
		snap *proxymodel.MeshSnapshot
		want string
	}{{&other, "20s"}, {snap, "10s"}, {&other, "20s"}} {
		m, err := c.snap.Match("MeshTimeout", web)
		if err != nil {
			t.Fatal(err)
		}
		if got := idleTimeout(t, m); got != c.want {
			t.Errorf("idle timeout %s, want %s", got, c.want)
		}
	}

	// A new snapshot (the next recompute) with the policy changed.
	next := &proxymodel.MeshSnapshot{
		Mesh:       "default",
		Dataplanes: []proxymodel.NamedDataplane{web},
		Policies:   map[string][]proxymodel.PolicyItem{"MeshTimeout": {{Name: "t", Spec: timeout("30s")}}},
	}
	m, err := next.Match("MeshTimeout", web)
	if err != nil {
		t.Fatal(err)
	}
	if got := idleTimeout(t, m); got != "30s" {
		t.Errorf("new snapshot: idle timeout %s, want 30s", got)
	}
	// A kind with no policies matches nothing.
	m, err = next.Match("MeshRetry", web)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Policies) != 0 || len(m.To) != 0 {
		t.Errorf("MeshRetry without policies: %+v", m)
	}
}

// Memo computes a value once per snapshot and key, keeps no errors, and a
// new snapshot starts empty.
func TestSnapshotMemo(t *testing.T) {
	snap := &proxymodel.MeshSnapshot{Mesh: "default"}
	var calls sync.Map
	compute := func(key string) func() (any, error) {
		return func() (any, error) {
			n, _ := calls.LoadOrStore(key, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
			return key + "!", nil
		}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, k := range []string{"a", "b"} {
				v, err := snap.Memo(k, compute(k))
				if err != nil || v != k+"!" {
					t.Errorf("Memo(%s) = %v, %v", k, v, err)
				}
			}
		})
	}
	wg.Wait()
	if _, err := snap.Memo("bad", func() (any, error) { return nil, fmt.Errorf("no") }); err == nil {
		t.Error("Memo lost the error")
	}
	if v, err := snap.Memo("bad", func() (any, error) { return "ok", nil }); err != nil || v != "ok" {
		t.Errorf("an error was kept: %v, %v", v, err)
	}
	next := &proxymodel.MeshSnapshot{Mesh: "default"}
	v, _ := next.Memo("a", func() (any, error) { return "new", nil })
	if v != "new" {
		t.Errorf("a new snapshot gave %v", v)
	}
}
