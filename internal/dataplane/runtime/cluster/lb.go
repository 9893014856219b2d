package cluster

import (
	"math/rand/v2"
	"sync/atomic"
)

// maxSchedule bounds the length of a weighted round-robin schedule; larger
// weight sums are scaled down proportionally (every endpoint keeps at
// least one slot).
const maxSchedule = 4096

// Endpoint is one upstream host of a cluster.
type Endpoint struct {
	// Addr is ip:port, ready for net.Dial.
	Addr string
	// Weight is load_balancing_weight (1 when unset).
	Weight uint32
	// Zone is the locality's zone, kept for stats and future zone-aware LB.
	Zone string
	// Healthy is true for health_status HEALTHY and UNKNOWN, the statuses
	// that receive traffic.
	Healthy bool
}

// endpointSet is an immutable endpoint membership with its precomputed
// round-robin schedule. Picking is one atomic add and two slice loads, with
// no lock: a new membership is a new endpointSet swapped in atomically.
type endpointSet struct {
	all      []Endpoint
	healthy  []string
	schedule []uint32 // indexes into healthy, in smooth weighted order
	next     atomic.Uint64
}

func newEndpointSet(all []Endpoint) *endpointSet {
	s := &endpointSet{all: all}
	var weights []uint64
	for _, e := range all {
		if !e.Healthy {
			continue
		}
		s.healthy = append(s.healthy, e.Addr)
		w := uint64(e.Weight)
		if w == 0 {
			w = 1
		}
		weights = append(weights, w)
	}
	s.schedule = schedule(weights)
	if len(s.schedule) > 0 {
		// Like Envoy, start each new membership at a random position so
		// that proxies updated at the same time do not hit the same host.
		s.next.Store(rand.Uint64N(uint64(len(s.schedule))))
	}
	return s
}

// pick returns the next healthy endpoint address in round-robin order.
func (s *endpointSet) pick() (string, bool) {
	n := uint64(len(s.schedule))
	if n == 0 {
		return "", false
	}
	i := s.next.Add(1) - 1
	return s.healthy[s.schedule[i%n]], true
}

// schedule returns a sequence of indexes into weights in which index i
// appears weights[i] times (after reduction), interleaved by the smooth
// weighted round-robin algorithm so that no host gets long bursts.
func schedule(weights []uint64) []uint32 {
	if len(weights) == 0 {
		return nil
	}
	g := weights[0]
	var sum uint64
	for _, w := range weights {
		g = gcd(g, w)
		sum += w
	}
	w := make([]int64, len(weights))
	var total int64
	for i, x := range weights {
		x /= g
		if sum/g > maxSchedule {
			x = max(1, x*maxSchedule/(sum/g))
		}
		w[i] = int64(x)
		total += int64(x)
	}
	out := make([]uint32, 0, total)
	cur := make([]int64, len(w))
	for range total {
		best := 0
		for i := range w {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		out = append(out, uint32(best))
	}
	return out
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
