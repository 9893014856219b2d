package server

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/trellis-mesh/trellis/internal/ca"
)

// A recompute that skips every proxy (nothing changed) keeps the outbound
// parts: after a later policy change that touches only inbounds, every
// proxy is rebuilt with the outbound parts built before; a part no proxy
// uses any more is dropped.
func TestOutputMemoKeepsPartsOfSkippedProxies(t *testing.T) {
	ctx := context.Background()
	mgr := sharedTestMesh(t, "STRICT")
	cas := ca.New(mgr, slog.New(slog.NewTextHandler(io.Discard, nil)))
	cache := newMeshCache(mgr)
	memo := newOutputMemo()
	proxies := map[string]*proxyState{}
	names := []string{"web-1", "api-2", "db-3", "web-4", "api-5", "db-6"}
	recompute := func(names []string) map[string]*output {
		t.Helper()
		ms, err := cache.load(ctx, cas, "default")
		if err != nil {
			t.Fatal(err)
		}
		outs := map[string]*output{}
		for _, name := range names {
			ps := proxies[name]
			if ps == nil {
				ps = newProxyState(&nodeInfo{key: proxyKey{Mesh: "default", Name: name}})
				proxies[name] = ps
			}
			o, _, err := sidecarOutput(ms, memo, ps)
			if err != nil {
				t.Fatal(err)
			}
			outs[name] = o
		}
		memo.sweep()
		return outs
	}
	first := recompute(names)
	parts := len(memo.parts)
	if parts == 0 {
		t.Fatal("no outbound parts memoized")
	}
	if again := recompute(names); again["web-1"] != first["web-1"] {
		t.Fatal("a recompute with nothing changed rebuilt web-1")
	}
	if len(memo.parts) != parts {
		t.Fatalf("a recompute that skipped every proxy left %d parts of %d", len(memo.parts), parts)
	}
	// Inbounds only: a MeshTrafficPermission rule.
	apply(t, mgr, `type: MeshTrafficPermission
name: mtp-extra
mesh: default
spec:
  targetRef:
    kind: Mesh
  from:
  - targetRef:
      kind: MeshService
      name: absent
    default:
      action: Deny
`)
	next := recompute(names)
	const clusters = 2
	for _, name := range names {
		if next[name] == first[name] {
			t.Errorf("%s: not rebuilt after the policy change", name)
		}
		got, was := next[name][clusters], first[name][clusters]
		var shared int
		for i := range got {
			for j := range was {
				if got[i].name == was[j].name && got[i].res == was[j].res {
					shared++
				}
			}
		}
		// api and db (the outbounds) come from the part built first.
		if shared < 2 {
			t.Errorf("%s: %d clusters reused, want the 2 outbound ones", name, shared)
		}
	}
	// A proxy gone: its part is dropped once no one uses it.
	recompute(nil)
	if len(memo.parts) != 0 || len(memo.of) != 0 {
		t.Errorf("after a recompute with no proxies: %d parts, %d proxies remembered", len(memo.parts), len(memo.of))
	}
}
