package cluster

import (
	"errors"
	"fmt"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func withBreaker(def *clusterv3.Cluster, cx, pending, rq, retries uint32) *clusterv3.Cluster {
	th := &clusterv3.CircuitBreakers_Thresholds{}
	if cx > 0 {
		th.MaxConnections = wrapperspb.UInt32(cx)
	}
	if pending > 0 {
		th.MaxPendingRequests = wrapperspb.UInt32(pending)
	}
	if rq > 0 {
		th.MaxRequests = wrapperspb.UInt32(rq)
	}
	if retries > 0 {
		th.MaxRetries = wrapperspb.UInt32(retries)
	}
	def.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{th}}
	return def
}

func TestBreakerDefaults(t *testing.T) {
	for _, cb := range []*clusterv3.CircuitBreakers{nil, {Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{}}}} {
		b, err := parseBreaker(cb)
		if err != nil {
			t.Fatal(err)
		}
		if b.maxCx != 1024 || b.maxPending != 1024 || b.maxRq != 1024 || b.maxRetries != 3 {
			t.Fatalf("defaults %d/%d/%d/%d", b.maxCx, b.maxPending, b.maxRq, b.maxRetries)
		}
	}
	_, err := parseBreaker(&clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{Priority: corev3.RoutingPriority_HIGH}}})
	if !errContains(err, "circuit_breakers.thresholds[0].priority HIGH") {
		t.Fatalf("err = %v", err)
	}
}

func TestBreakerMaxRequestsAndRetries(t *testing.T) {
	m, st := testManager(t)
	c := install(t, m, st, withBreaker(staticCluster("b", addrs(1)), 0, 0, 2, 1)).Get("b")
	r1, err1 := c.Begin(false)
	r2, err2 := c.Begin(true)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := c.Begin(false); !errors.Is(err, ErrOverflow) {
		t.Fatalf("third request: err = %v, want overflow", err)
	}
	r1.Done("", Outcome{})
	r1.Done("", Outcome{}) // a second Done does nothing
	if _, err := c.Begin(true); !errors.Is(err, ErrRetryOverflow) || !errors.Is(err, ErrOverflow) {
		t.Fatalf("second retry: err = %v, want retry overflow", err)
	}
	r3, err := c.Begin(false)
	if err != nil {
		t.Fatalf("after Done: %v", err)
	}
	r2.Done("", Outcome{})
	r3.Done("", Outcome{})
	s := st.Snapshot()
	if s["cluster.b.upstream_rq_pending_overflow"] != 1 || s["cluster.b.upstream_rq_retry_overflow"] != 1 || s["cluster.b.upstream_rq_active"] != 0 {
		t.Fatalf("stats %v", s)
	}
}

// TestBreakerPendingOverflow holds the one connection max_connections
// allows: the next attempt waits for it (pending), the one after that
// overflows max_pending_requests.
func TestBreakerPendingOverflow(t *testing.T) {
	addr, accepted := acceptAll(t)
	go func() {
		for c := range accepted {
			defer c.Close()
		}
	}()
	m, st := testManager(t)
	c := install(t, m, st, withBreaker(staticCluster("p", []string{addr}), 1, 1, 0, 0)).Get("p")
	first, err := c.GetH1(addr, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() {
		pc, err := c.GetH1(addr, time.Time{})
		if err == nil {
			pc.Close()
		}
		second <- err
	}()
	waitFor(t, 2*time.Second, "an attempt pending", func() bool { return c.breaker.pending.Load() == 1 })
	if _, err := c.GetH1(addr, time.Time{}); !errors.Is(err, ErrOverflow) {
		t.Fatalf("third attempt: err = %v, want overflow", err)
	}
	c.PutH1(first) // idle now: the waiting attempt takes it
	select {
	case err := <-second:
		if err != nil {
			t.Fatalf("pending attempt: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the pending attempt did not get a connection")
	}
	s := st.Snapshot()
	if s["cluster.p.upstream_cx_total"] != 1 {
		t.Fatalf("%d connections made: the returned one was not reused", s["cluster.p.upstream_cx_total"])
	}
	if s["cluster.p.upstream_rq_pending_overflow"] != 1 || s["cluster.p.upstream_cx_overflow"] < 1 || s["cluster.p.upstream_rq_pending_active"] != 0 {
		t.Fatalf("stats: pending_overflow %d cx_overflow %d pending_active %d", s["cluster.p.upstream_rq_pending_overflow"],
			s["cluster.p.upstream_cx_overflow"], s["cluster.p.upstream_rq_pending_active"])
	}
}

// TestBreakerConnectionSlotTimeout: a pending attempt that gets no slot
// within connect_timeout fails as a connect timeout.
func TestBreakerConnectionSlotTimeout(t *testing.T) {
	addr, _ := acceptAll(t)
	m, st := testManager(t)
	def := withBreaker(staticCluster("s", []string{addr}), 1, 0, 0, 0)
	def.ConnectTimeout.Seconds, def.ConnectTimeout.Nanos = 0, int32(200*time.Millisecond)
	c := install(t, m, st, def).Get("s")
	held, err := c.DialTCP(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := c.DialTCP(t.Context()); !errors.Is(err, ErrConnectTimeout) {
		t.Fatalf("err = %v, want a connect timeout", err)
	}
}

// TestBreakerErrorsAreNotOutliers: attempts stopped by a circuit breaker
// do not count against the host.
func TestBreakerErrorsAreNotOutliers(t *testing.T) {
	m, st := testManager(t)
	def := withOutlier(staticCluster("n", addrs(2)), &clusterv3.OutlierDetection{Consecutive_5Xx: wrapperspb.UInt32(1)})
	c := install(t, m, st, def).Get("n")
	for range 5 {
		r, _ := c.Begin(false)
		r.Done(addrs(2)[0], Outcome{Err: fmt.Errorf("cluster n: %w", ErrOverflow), LocalOrigin: true})
		r, _ = c.Begin(false)
		r.Done(addrs(2)[0], Outcome{Err: fmt.Errorf("x: %w: %w", errNoSlot, ErrConnectTimeout), LocalOrigin: true})
	}
	if c.lb.host(addrs(2)[0]).ejected.Load() {
		t.Fatal("ejected for circuit breaker overflows")
	}
	r, _ := c.Begin(false)
	r.Done(addrs(2)[0], Outcome{Err: errors.New("connection refused"), LocalOrigin: true})
	if !c.lb.host(addrs(2)[0]).ejected.Load() {
		t.Fatal("a real connect failure did not count")
	}
}
