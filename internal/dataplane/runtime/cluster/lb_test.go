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

// view builds a load balancing view over eps with the default config of
// policy.
func view(t *testing.T, policy lbPolicy, eps []Endpoint) (*lbView, *members) {
	t.Helper()
	cfg := &lbConfig{policy: policy, choiceCount: 2, bias: 1, ringMin: 1024, ringMax: 8 << 20, maglevSize: 65537, panicThreshold: 50}
	m := newMembers(eps, nil, nil)
	v, _ := buildView(m, cfg)
	return v, m
}

func TestPickSkipsUnhealthy(t *testing.T) {
	v, _ := view(t, policyRoundRobin, []Endpoint{
		{Addr: "a", Weight: 1, Healthy: true},
		{Addr: "b", Weight: 1, Healthy: false},
		{Addr: "c", Weight: 1, Healthy: true},
	})
	counts := map[string]int{}
	for range 100 {
		h := v.pick(0, false)
		if h == nil {
			t.Fatal("no pick")
		}
		counts[h.addr]++
	}
	if counts["b"] != 0 || counts["a"] != 50 || counts["c"] != 50 {
		t.Fatalf("counts = %v", counts)
	}
	if v, _ := view(t, policyRoundRobin, []Endpoint{{Addr: "x"}}); v.pick(0, false) != nil {
		t.Fatal("picked from an all-unhealthy set")
	}
}
