package cluster

import (
	"fmt"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func addrs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.0.%d:80", i+1)
	}
	return out
}

func TestRingHashStickiness(t *testing.T) {
	for _, policy := range []clusterv3.Cluster_LbPolicy{clusterv3.Cluster_RING_HASH, clusterv3.Cluster_MAGLEV} {
		t.Run(policy.String(), func(t *testing.T) {
			m, st := testManager(t)
			def := staticCluster("h", addrs(4))
			def.LbPolicy = policy
			c := install(t, m, st, def).Get("h")
			first := map[uint64]string{}
			used := map[string]bool{}
			for key := uint64(0); key < 200; key++ {
				k := key * 0x9e3779b97f4a7c15
				for range 3 {
					addr, err := c.PickHash(k, true)
					if err != nil {
						t.Fatal(err)
					}
					if prev, ok := first[k]; ok && prev != addr {
						t.Fatalf("key %x went to %s, then %s", k, prev, addr)
					}
					first[k] = addr
					used[addr] = true
				}
			}
			if len(used) != 4 {
				t.Fatalf("200 keys used %d of 4 hosts", len(used))
			}
			// Taking one host out moves its keys and few others (the
			// remaining hosts get more points or slots, as in Envoy).
			gone := first[0]
			c.lb.host(gone).ejected.Store(true)
			c.healthChanged()
			stayed, others := 0, 0
			for k, was := range first {
				addr, _ := c.PickHash(k, true)
				if addr == gone {
					t.Fatalf("key %x still on the ejected host", k)
				}
				if was != gone {
					others++
					if addr == was {
						stayed++
					}
				}
			}
			if stayed*10 < others*8 {
				t.Fatalf("only %d of %d keys of the remaining hosts stayed", stayed, others)
			}
			// Identical definitions give identical choices (another proxy).
			m2, st2 := testManager(t)
			c2 := install(t, m2, st2, def).Get("h")
			c2.lb.host(gone).ejected.Store(true)
			c2.healthChanged()
			for k := range first {
				a, _ := c.PickHash(k, true)
				b, _ := c2.PickHash(k, true)
				if a != b {
					t.Fatalf("key %x: %s on one proxy, %s on the other", k, a, b)
				}
			}
		})
	}
}

func TestRingHashWeightsAndMurmur(t *testing.T) {
	cfg := &lbConfig{policy: policyRingHash, ringMin: 1024, ringMax: 8 << 20, murmur: true}
	hosts := []*host{{addr: "a:1"}, {addr: "b:1"}}
	ring := buildRing(hosts, []uint32{3, 1}, cfg)
	count := [2]int{}
	for _, e := range ring {
		count[e.host]++
	}
	if count[0] < 2*count[1] || count[1] == 0 {
		t.Fatalf("ring points %v for weights 3:1", count)
	}
	cfg.ringMax = 16
	if n := len(buildRing(hosts, []uint32{1, 1}, cfg)); n > 18 {
		t.Fatalf("ring of %d points over maximum_ring_size 16", n)
	}
	table := buildMaglev(hosts, []uint32{3, 1}, 101)
	count = [2]int{}
	for _, i := range table {
		count[i]++
	}
	if count[0] < 2*count[1] || count[1] == 0 || count[0]+count[1] != 101 {
		t.Fatalf("maglev slots %v for weights 3:1", count)
	}
	// MurmurHash64A of the empty input with seed 0 is 0.
	if murmur2(nil, 0) != 0 {
		t.Fatal("murmur2 of nothing")
	}
}

func TestLeastRequestPrefersIdleHost(t *testing.T) {
	m, st := testManager(t)
	def := staticCluster("lr", addrs(2))
	def.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
	def.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{
		ChoiceCount: wrapperspb.UInt32(10),
	}}
	c := install(t, m, st, def).Get("lr")
	busy := addrs(2)[0]
	// Hold 5 requests on the busy host.
	var held []*Request
	for len(held) < 5 {
		req, _ := c.Begin(false)
		addr, _ := c.Pick()
		if addr != busy {
			req.Done(addr, Outcome{Status: 200})
			continue
		}
		held = append(held, req)
	}
	got := picks(c, 200)
	if got[busy] > 10 {
		t.Fatalf("the host with 5 requests in flight got %d of 200 picks: %v", got[busy], got)
	}
	for _, r := range held {
		r.Done(busy, Outcome{Status: 200})
	}
	if n := c.lb.host(busy).active.Load(); n != 0 {
		t.Fatalf("active requests after Done = %d", n)
	}
	// With unequal weights: weight / (active+1)^bias.
	def2 := staticCluster("lrw", addrs(2))
	def2.LoadAssignment.Endpoints[0].LbEndpoints[0].LoadBalancingWeight = wrapperspb.UInt32(2)
	def2.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
	c2 := install(t, m, st, def2).Get("lrw")
	c2.lb.host(busy).active.Store(50)
	got = map[string]int{}
	for range 300 {
		got[c2.lb.view.Load().pick(0, false).addr]++
	}
	if got[busy] > 60 {
		t.Fatalf("weight 2 with 50 active got %d of 300: %v", got[busy], got)
	}
}

func TestRandomUsesAllHosts(t *testing.T) {
	m, st := testManager(t)
	def := staticCluster("r", addrs(3))
	def.LbPolicy = clusterv3.Cluster_RANDOM
	got := picks(install(t, m, st, def).Get("r"), 300)
	if len(got) != 3 {
		t.Fatalf("picks %v", got)
	}
}

func TestPriorityFailoverAndPanic(t *testing.T) {
	m, st := testManager(t)
	a := addrs(4)
	def := staticCluster("p", a[:2], a[2:])
	c := install(t, m, st, def).Get("p")
	only := func(want ...string) {
		t.Helper()
		got := picks(c, 100)
		for _, w := range want {
			if got[w] == 0 {
				t.Fatalf("%s got no traffic: %v", w, got)
			}
			delete(got, w)
		}
		if len(got) > 0 {
			t.Fatalf("unexpected picks %v, want only %v", got, want)
		}
	}
	only(a[0], a[1])
	// One of priority 0 out: 50% is not below the panic threshold.
	c.lb.host(a[0]).hcFailed.Store(true)
	c.healthChanged()
	only(a[1])
	// Priority 0 out: priority 1 takes over (no panic: it is healthy).
	c.lb.host(a[1]).ejected.Store(true)
	c.healthChanged()
	only(a[2], a[3])
	if got := st.Snapshot()["cluster.p.membership_healthy"]; got != 2 {
		t.Fatalf("membership_healthy = %d", got)
	}
	// Everything out: panic, priority 0 gets the traffic again.
	c.lb.host(a[2]).hcFailed.Store(true)
	c.lb.host(a[3]).hcFailed.Store(true)
	c.healthChanged()
	only(a[0], a[1])

	// Panic threshold 0 disables panic mode.
	def0 := staticCluster("p0", a[:2])
	def0.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{HealthyPanicThreshold: &typev3.Percent{Value: 0}}
	c0 := install(t, m, st, def, def0).Get("p0")
	c0.lb.host(a[0]).hcFailed.Store(true)
	c0.lb.host(a[1]).hcFailed.Store(true)
	c0.healthChanged()
	if _, err := c0.Pick(); err != ErrNoHealthyUpstream {
		t.Fatalf("no panic mode: Pick err = %v", err)
	}
	// fail_traffic_on_panic: no traffic in panic mode.
	deff := staticCluster("pf", a[:2])
	deff.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{LocalityConfigSpecifier: &clusterv3.Cluster_CommonLbConfig_ZoneAwareLbConfig_{
		ZoneAwareLbConfig: &clusterv3.Cluster_CommonLbConfig_ZoneAwareLbConfig{FailTrafficOnPanic: true}}}
	cf := install(t, m, st, def, def0, deff).Get("pf")
	cf.lb.host(a[0]).hcFailed.Store(true)
	cf.lb.host(a[1]).ejected.Store(true)
	cf.healthChanged()
	if _, err := cf.Pick(); err != ErrNoHealthyUpstream {
		t.Fatalf("fail_traffic_on_panic: Pick err = %v", err)
	}
	// A single level with 1 of 3 usable panics at the default 50%.
	def3 := staticCluster("p3", a[:3])
	c3 := install(t, m, st, def, def0, deff, def3).Get("p3")
	c3.lb.host(a[0]).hcFailed.Store(true)
	c3.lb.host(a[1]).hcFailed.Store(true)
	c3.healthChanged()
	if got := picks(c3, 100); len(got) != 3 {
		t.Fatalf("panic mode picks %v, want all three", got)
	}
}

func TestLBValidation(t *testing.T) {
	m, st := testManager(t)
	for _, tc := range []struct {
		edit func(*clusterv3.Cluster)
		want string
	}{
		{func(c *clusterv3.Cluster) { c.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED }, "lb_policy CLUSTER_PROVIDED needs type ORIGINAL_DST"},
		{func(c *clusterv3.Cluster) {
			c.LbPolicy = clusterv3.Cluster_RING_HASH
			c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{
				MinimumRingSize: wrapperspb.UInt64(4096), MaximumRingSize: wrapperspb.UInt64(1024)}}
		}, "ring_hash_lb_config.minimum_ring_size 4096 is larger than maximum_ring_size 1024"},
		{func(c *clusterv3.Cluster) {
			c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{}}
		}, "ring_hash_lb_config needs lb_policy RING_HASH"},
		{func(c *clusterv3.Cluster) {
			c.LbPolicy = clusterv3.Cluster_MAGLEV
			c.LbConfig = &clusterv3.Cluster_MaglevLbConfig_{MaglevLbConfig: &clusterv3.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(1000)}}
		}, "maglev_lb_config.table_size 1000 must be a prime"},
		{func(c *clusterv3.Cluster) {
			c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
			c.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{
				ChoiceCount: wrapperspb.UInt32(1)}}
		}, "least_request_lb_config.choice_count 1 is out of range"},
		{func(c *clusterv3.Cluster) {
			c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
			c.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{
				ActiveRequestBias: &corev3.RuntimeDouble{DefaultValue: -1, RuntimeKey: "k"}}}
		}, "least_request_lb_config.active_request_bias.default_value -1"},
		{func(c *clusterv3.Cluster) {
			c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{HealthyPanicThreshold: &typev3.Percent{Value: 101}}
		}, "common_lb_config.healthy_panic_threshold 101 is out of range"},
	} {
		def := staticCluster("bad", addrs(1))
		tc.edit(def)
		_, err := prepare(m, st, def)
		if !errContains(err, `cluster "bad": `+tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}
