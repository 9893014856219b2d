package cluster

import (
	"math"
	"math/rand/v2"
	"sync"
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
	// Priority is the LocalityLbEndpoints priority (0 is the highest).
	// Traffic goes to the lowest priority that has a usable host.
	Priority uint32
	// Healthy is true for health_status HEALTHY and UNKNOWN, the statuses
	// that receive traffic. An endpoint the control plane marks otherwise
	// never receives traffic, not even in panic mode.
	Healthy bool
}

// host is the mutable state of one endpoint address: active health
// checking, outlier detection and the requests in flight. It is kept
// across membership updates for as long as the address stays a member, so
// that an EDS update does not reset a host's health.
type host struct {
	addr string
	// active counts the requests picked for this host and not yet Done
	// (least request).
	active atomic.Int64
	// hcFailed is set while active health checking holds the host
	// unhealthy (also before its first check passes).
	hcFailed atomic.Bool
	// ejected is set while outlier detection holds the host out.
	ejected atomic.Bool
	// od is the host's outlier detection state.
	od outlierState
	// hc is the host's active health checking state.
	hc hcState
}

// usable reports whether neither health checking nor outlier detection
// holds the host out.
func (h *host) usable() bool { return !h.hcFailed.Load() && !h.ejected.Load() }

// members is an immutable cluster membership: the endpoints from the
// control plane and their hosts.
type members struct {
	eps    []Endpoint
	hosts  []*host // parallel to eps
	byAddr map[string]*host
}

// newMembers builds a membership, reusing the hosts of prev that are still
// members (fresh hosts start as fresh says: failing their first health
// check when the cluster health checks).
func newMembers(eps []Endpoint, prev *members, fresh func(*host)) *members {
	m := &members{eps: eps, hosts: make([]*host, len(eps)), byAddr: make(map[string]*host, len(eps))}
	for i, e := range eps {
		h := m.byAddr[e.Addr]
		if h == nil && prev != nil {
			h = prev.byAddr[e.Addr]
		}
		if h == nil {
			h = &host{addr: e.Addr}
			if fresh != nil {
				fresh(h)
			}
		}
		m.hosts[i] = h
		m.byAddr[e.Addr] = h
	}
	return m
}

// lbView is the immutable set of hosts a cluster balances over at one
// moment, with the lookup structures of its lb_policy. Any change of
// membership or host health builds a new view, swapped in atomically, so
// that picking takes no lock.
type lbView struct {
	policy   lbPolicy
	hosts    []*host
	weights  []uint32
	equal    bool     // all weights are the same
	schedule []uint32 // ROUND_ROBIN: indexes into hosts, smooth weighted order
	next     atomic.Uint64
	ring     []ringEntry // RING_HASH
	table    []uint32    // MAGLEV: indexes into hosts
	cfg      *lbConfig
}

// viewStats are the membership counts of a view for the cluster's gauges.
type viewStats struct{ total, healthy int }

// buildView chooses the hosts that get traffic: among the endpoints the
// control plane marks healthy, those of the lowest priority that has a
// usable host (simple failover; Envoy's overprovisioning factor is not
// applied, i.e. it is 1.0). In panic mode health checking and outlier
// detection are ignored and every eligible host of the lowest priority
// gets traffic, as in Envoy. Panic is when the cluster's health, the sum
// over the priorities of their usable share of eligible hosts (at most
// 100%), is below healthy_panic_threshold: one priority with 1 of 3 hosts
// usable panics at the default 50%, a failed priority 0 with a healthy
// priority 1 does not. With zone_aware_lb_config.fail_traffic_on_panic no
// host gets traffic in panic mode.
func buildView(m *members, cfg *lbConfig) (*lbView, viewStats) {
	v := &lbView{policy: cfg.policy, cfg: cfg}
	var st viewStats
	if m == nil {
		return v, st
	}
	st.total = len(m.eps)
	type level struct{ eligible, usable int }
	levels := map[uint32]*level{}
	minAll, minUsable := uint32(math.MaxUint32), uint32(math.MaxUint32)
	for i, e := range m.eps {
		if !e.Healthy {
			continue
		}
		l := levels[e.Priority]
		if l == nil {
			l = &level{}
			levels[e.Priority] = l
		}
		l.eligible++
		minAll = min(minAll, e.Priority)
		if m.hosts[i].usable() {
			l.usable++
			st.healthy++
			minUsable = min(minUsable, e.Priority)
		}
	}
	if len(levels) == 0 {
		return v, st
	}
	var health float64
	for _, l := range levels {
		health += 100 * float64(l.usable) / float64(l.eligible)
	}
	panicMode := cfg.panicThreshold > 0 && min(health, 100) < cfg.panicThreshold
	prio := minUsable
	switch {
	case panicMode && cfg.failOnPanic:
		return v, st // zone_aware_lb_config.fail_traffic_on_panic
	case panicMode:
		prio = minAll
	case st.healthy == 0:
		return v, st
	}
	for i, e := range m.eps {
		if !e.Healthy || e.Priority != prio || (!panicMode && !m.hosts[i].usable()) {
			continue
		}
		if slicesContainsHost(v.hosts, m.hosts[i]) {
			continue // the same address twice: one host
		}
		w := max(e.Weight, 1)
		v.hosts = append(v.hosts, m.hosts[i])
		v.weights = append(v.weights, w)
	}
	v.equal = true
	for _, w := range v.weights {
		if w != v.weights[0] {
			v.equal = false
		}
	}
	switch cfg.policy {
	case policyRoundRobin:
		w64 := make([]uint64, len(v.weights))
		for i, w := range v.weights {
			w64[i] = uint64(w)
		}
		v.schedule = schedule(w64)
		if len(v.schedule) > 0 {
			// Like Envoy, start each new membership at a random position
			// so that proxies updated at the same time do not hit the
			// same host.
			v.next.Store(rand.Uint64N(uint64(len(v.schedule))))
		}
	case policyRingHash:
		v.ring = buildRing(v.hosts, v.weights, cfg)
	case policyMaglev:
		v.table = buildMaglev(v.hosts, v.weights, cfg.maglevSize)
	}
	return v, st
}

func slicesContainsHost(hs []*host, h *host) bool {
	for _, x := range hs {
		if x == h {
			return true
		}
	}
	return false
}

// pick returns a host by the view's policy; hasKey and key come from a
// route hash policy and are used by RING_HASH and MAGLEV only (a random
// key stands in when there is none, as in Envoy).
func (v *lbView) pick(key uint64, hasKey bool) *host {
	n := len(v.hosts)
	if n == 0 {
		return nil
	}
	switch v.policy {
	case policyRandom:
		return v.hosts[rand.IntN(n)]
	case policyLeastRequest:
		return v.leastRequest()
	case policyRingHash, policyMaglev:
		if !hasKey {
			key = rand.Uint64()
		}
		if v.policy == policyRingHash {
			return v.hosts[ringLookup(v.ring, key)]
		}
		return v.hosts[v.table[key%uint64(len(v.table))]]
	default:
		s := uint64(len(v.schedule))
		i := v.next.Add(1) - 1
		return v.hosts[v.schedule[i%s]]
	}
}

// leastRequest picks, with equal weights, the host with the fewest active
// requests among choice_count random candidates (power of two choices);
// with unequal weights, a host at random in proportion to
// weight / (active+1)^active_request_bias, the distribution Envoy's
// weighted least request scheduler converges to.
func (v *lbView) leastRequest() *host {
	n := len(v.hosts)
	if v.equal {
		var best *host
		for range v.cfg.choiceCount {
			h := v.hosts[rand.IntN(n)]
			if best == nil || h.active.Load() < best.active.Load() {
				best = h
			}
		}
		return best
	}
	eff := make([]float64, n)
	var sum float64
	for i, h := range v.hosts {
		w := float64(v.weights[i])
		if b := v.cfg.bias; b != 0 {
			w /= math.Pow(float64(h.active.Load()+1), b)
		}
		eff[i] = w
		sum += w
	}
	r := rand.Float64() * sum
	for i, w := range eff {
		if r < w {
			return v.hosts[i]
		}
		r -= w
	}
	return v.hosts[n-1]
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

// balancer is a cluster's load balancing state: its membership and the
// view built from it and its hosts' health.
type balancer struct {
	cfg *lbConfig

	mu      sync.Mutex // serializes rebuilds
	members atomic.Pointer[members]
	view    atomic.Pointer[lbView]
}

// host returns the current member with the given address, or nil.
func (b *balancer) host(addr string) *host {
	if m := b.members.Load(); m != nil {
		return m.byAddr[addr]
	}
	return nil
}

// setMembers installs a new membership (fresh initializes hosts that were
// not members before) and rebuilds the view.
func (b *balancer) setMembers(eps []Endpoint, fresh func(*host)) (*members, viewStats) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := newMembers(eps, b.members.Load(), fresh)
	b.members.Store(m)
	v, st := buildView(m, b.cfg)
	b.view.Store(v)
	return m, st
}

// rebuild builds the view again after a host's health changed.
func (b *balancer) rebuild() viewStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, st := buildView(b.members.Load(), b.cfg)
	b.view.Store(v)
	return st
}
