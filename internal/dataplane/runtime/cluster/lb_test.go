package cluster

import (
	"slices"
	"testing"
)

func TestSchedule(t *testing.T) {
	for _, tc := range []struct {
		weights []uint64
		want    []uint32
	}{
		{[]uint64{1, 1, 1}, []uint32{0, 1, 2}},
		{[]uint64{5, 5}, []uint32{0, 1}},
		{[]uint64{3, 1}, []uint32{0, 0, 1, 0}},
		{[]uint64{5, 1, 1}, []uint32{0, 0, 1, 0, 2, 0, 0}},
	} {
		if got := schedule(tc.weights); !slices.Equal(got, tc.want) {
			t.Errorf("schedule(%v) = %v, want %v", tc.weights, got, tc.want)
		}
	}
	// Huge weights are scaled, every endpoint keeps a slot.
	s := schedule([]uint64{1_000_000, 1})
	if len(s) > maxSchedule+1 || !slices.Contains(s, 1) {
		t.Fatalf("len %d, contains 1: %v", len(s), slices.Contains(s, 1))
	}
}

func TestPickSkipsUnhealthy(t *testing.T) {
	s := newEndpointSet([]Endpoint{
		{Addr: "a", Weight: 1, Healthy: true},
		{Addr: "b", Weight: 1, Healthy: false},
		{Addr: "c", Weight: 1, Healthy: true},
	})
	counts := map[string]int{}
	for range 100 {
		addr, ok := s.pick()
		if !ok {
			t.Fatal("no pick")
		}
		counts[addr]++
	}
	if counts["b"] != 0 || counts["a"] != 50 || counts["c"] != 50 {
		t.Fatalf("counts = %v", counts)
	}
	if _, ok := newEndpointSet([]Endpoint{{Addr: "x"}}).pick(); ok {
		t.Fatal("picked from an all-unhealthy set")
	}
}
