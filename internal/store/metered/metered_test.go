package metered_test

import (
	"context"
	"testing"

	"github.com/trellis-mesh/trellis/internal/cpmetrics"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/memory"
	"github.com/trellis-mesh/trellis/internal/store/metered"
	"github.com/trellis-mesh/trellis/internal/store/storetest"
)

// The decorator is a store like any other: the conformance suite passes.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return metered.New(memory.New(), "memory", cpmetrics.New()) })
}

// Every operation is timed by operation, kind and store type.
func TestOperationsAreTimed(t *testing.T) {
	m := cpmetrics.New()
	s := metered.New(memory.New(), "memory", m)
	ctx := context.Background()
	if err := s.Create(ctx, &store.Record{Kind: "Mesh", Name: "default", Spec: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	_, _ = s.Get(ctx, store.Key{Kind: "Mesh", Name: "default"})
	_, _ = s.Get(ctx, store.Key{Kind: "Mesh", Name: "nope"})
	_, _ = s.List(ctx, store.Query{Kind: "Dataplane"})
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, f := range fams {
		if f.GetName() != "store" {
			continue
		}
		for _, mt := range f.GetMetric() {
			key := ""
			for _, l := range mt.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + ","
			}
			got[key] = mt.GetHistogram().GetSampleCount()
		}
	}
	want := map[string]uint64{
		"operation=create,resource_type=Mesh,store_type=memory,":    1,
		"operation=get,resource_type=Mesh,store_type=memory,":       2,
		"operation=list,resource_type=Dataplane,store_type=memory,": 1,
	}
	if len(got) != len(want) {
		t.Fatalf("store series %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d, want %d", k, got[k], n)
		}
	}
}
