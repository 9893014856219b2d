package cluster

import (
	"bufio"
	"bytes"
	"net"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// healthCheck is a health check every 100ms with thresholds of 2.
func healthCheck(kind any) *corev3.HealthCheck {
	hc := &corev3.HealthCheck{
		Timeout:            durationpb.New(time.Second),
		Interval:           durationpb.New(100 * time.Millisecond),
		UnhealthyThreshold: wrapperspb.UInt32(2),
		HealthyThreshold:   wrapperspb.UInt32(2),
		NoTrafficInterval:  durationpb.New(100 * time.Millisecond),
	}
	switch k := kind.(type) {
	case *corev3.HealthCheck_HttpHealthCheck:
		hc.HealthChecker = &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: k}
	case *corev3.HealthCheck_TcpHealthCheck:
		hc.HealthChecker = &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: k}
	case *corev3.HealthCheck_GrpcHealthCheck:
		hc.HealthChecker = &corev3.HealthCheck_GrpcHealthCheck_{GrpcHealthCheck: k}
	}
	return hc
}

func withHealthCheck(def *clusterv3.Cluster, hc *corev3.HealthCheck) *clusterv3.Cluster {
	def.HealthChecks = []*corev3.HealthCheck{hc}
	return def
}

// onlyTo reports whether n picks all went to addr.
func onlyTo(c *Cluster, addr string, n int) bool {
	got := picks(c, n)
	return got[addr] == n
}

// TestHealthCheckHTTP: an endpoint failing its HTTP check gets no traffic
// within interval × unhealthy_threshold (plus slack), and comes back after
// healthy_threshold passing checks.
func TestHealthCheckHTTP(t *testing.T) {
	good, bad := newBackend(t, "good"), newBackend(t, "bad")
	m, st := testManager(t)
	hc := healthCheck(&corev3.HealthCheck_HttpHealthCheck{
		Path:             "/health",
		ExpectedStatuses: []*typev3.Int64Range{{Start: 200, End: 300}},
		RequestHeadersToAdd: []*corev3.HeaderValueOption{{
			Header: &corev3.HeaderValue{Key: "X-Check", Value: "yes"},
		}},
	})
	hc.NoTrafficInterval = nil // 60s until traffic comes
	c := install(t, m, st, withHealthCheck(staticCluster("h", []string{good.addr, bad.addr}), hc)).Get("h")
	waitFor(t, 5*time.Second, "first checks", func() bool { return good.checks.Load() > 0 && bad.checks.Load() > 0 })
	waitFor(t, 5*time.Second, "both healthy", func() bool { return st.Snapshot()["cluster.h.membership_healthy"] == 2 })
	if got := good.header.Load(); got != "yes|h" {
		t.Fatalf("check request header|host = %q", got)
	}
	// Without traffic, no_traffic_interval (60s) applies; traffic brings
	// interval back.
	time.Sleep(300 * time.Millisecond)
	if n := bad.checks.Load(); n > 1 {
		t.Fatalf("%d checks without traffic under a 60s no_traffic_interval", n)
	}
	get(t, c, "/")
	waitFor(t, 5*time.Second, "checks every interval after traffic", func() bool { return bad.checks.Load() >= 3 })

	bad.status.Store(500)
	flipped := time.Now()
	waitFor(t, 5*time.Second, "the failing endpoint out", func() bool { return onlyTo(c, good.addr, 20) })
	t.Logf("out after %s (interval 100ms × unhealthy_threshold 2)", time.Since(flipped))
	for range 20 {
		if code, body := get(t, c, "/"); code != 200 || body != "good" {
			t.Fatalf("got %d %q with bad failing its check", code, body)
		}
	}
	bad.status.Store(200)
	waitFor(t, 5*time.Second, "the endpoint back", func() bool { return picks(c, 20)[bad.addr] > 0 })
	s := st.Snapshot()
	if s["cluster.h.health_check.failure"] < 2 || s["cluster.h.health_check.success"] == 0 || s["cluster.h.health_check.healthy"] != 2 {
		t.Fatalf("stats: failure %d success %d healthy %d", s["cluster.h.health_check.failure"], s["cluster.h.health_check.success"], s["cluster.h.health_check.healthy"])
	}
}

// tcpBackend answers "pong" (or answer) to a connection that sent "ping",
// as many times as asked.
func tcpBackend(t *testing.T, answer string) string {
	t.Helper()
	addr, accepted := acceptAll(t)
	go func() {
		for conn := range accepted {
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				buf := make([]byte, 4)
				for {
					if _, err := r.Read(buf); err != nil {
						return
					}
					if bytes.Equal(buf, []byte("ping")) {
						_, _ = conn.Write([]byte("<<" + answer + ">>"))
					}
				}
			}()
		}
	}()
	return addr
}

func TestHealthCheckTCP(t *testing.T) {
	good, bad := tcpBackend(t, "pong"), tcpBackend(t, "nope")
	m, st := testManager(t)
	c := install(t, m, st, withHealthCheck(staticCluster("t", []string{good, bad}), healthCheck(&corev3.HealthCheck_TcpHealthCheck{
		Send:    &corev3.HealthCheck_Payload{Payload: &corev3.HealthCheck_Payload_Text{Text: "70696e67"}},     // ping
		Receive: []*corev3.HealthCheck_Payload{{Payload: &corev3.HealthCheck_Payload_Text{Text: "706F6E67"}}}, // pong
	}))).Get("t")
	waitFor(t, 5*time.Second, "only the pong backend", func() bool {
		return st.Snapshot()["cluster.t.health_check.success"] >= 3 && onlyTo(c, good, 20)
	})
	// A connect-only check: a closed port fails it.
	closed := freePort(t)
	c2 := install(t, m, st, withHealthCheck(staticCluster("t2", []string{good, closed}),
		healthCheck(&corev3.HealthCheck_TcpHealthCheck{}))).Get("t2")
	waitFor(t, 5*time.Second, "only the listening backend", func() bool {
		return st.Snapshot()["cluster.t2.health_check.network_failure"] >= 1 && onlyTo(c2, good, 20)
	})
}

// grpcBackend is a grpc-go server (h2c) with the standard health service.
func grpcBackend(t *testing.T) (string, *health.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), hs
}

func TestHealthCheckGRPC(t *testing.T) {
	good, goodHS := grpcBackend(t)
	bad, badHS := grpcBackend(t)
	goodHS.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	badHS.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	m, st := testManager(t)
	def := withHealthCheck(staticCluster("g", []string{good, bad}), healthCheck(&corev3.HealthCheck_GrpcHealthCheck{ServiceName: "svc"}))
	c := install(t, m, st, def).Get("g")
	waitFor(t, 5*time.Second, "both serving", func() bool { return st.Snapshot()["cluster.g.membership_healthy"] == 2 })
	badHS.SetServingStatus("svc", healthpb.HealthCheckResponse_NOT_SERVING)
	waitFor(t, 5*time.Second, "only the serving backend", func() bool { return onlyTo(c, good, 20) })
	// An unknown service is a failed check (NOT_FOUND), not SERVING.
	c2 := install(t, m, st, def, withHealthCheck(staticCluster("g2", []string{good}),
		healthCheck(&corev3.HealthCheck_GrpcHealthCheck{ServiceName: "other"}))).Get("g2")
	waitFor(t, 5*time.Second, "failed checks of an unknown service", func() bool {
		return st.Snapshot()["cluster.g2.health_check.failure"] >= 2 && c2.lb.host(good).hcFailed.Load()
	})
}

// TestHealthCheckStopsWhenRetired: a cluster that leaves the
// configuration stops checking; so does a replaced one.
func TestHealthCheckStopsWhenRetired(t *testing.T) {
	b := newBackend(t, "b")
	m, st := testManager(t)
	def := withHealthCheck(staticCluster("r", []string{b.addr}), healthCheck(&corev3.HealthCheck_HttpHealthCheck{Path: "/health"}))
	old := install(t, m, st, def).Get("r")
	waitFor(t, 5*time.Second, "checks", func() bool { return b.checks.Load() >= 2 })
	// Replaced by a changed definition: the old checker stops, a new one runs.
	def2 := withHealthCheck(staticCluster("r", []string{b.addr}), healthCheck(&corev3.HealthCheck_HttpHealthCheck{Path: "/health?v=2"}))
	cur := install(t, m, st, def2).Get("r")
	old.hc.wg.Wait() // returns: its goroutines are gone
	// Removed: no more checks.
	install(t, m, st, staticCluster("other", addrs(1)))
	cur.hc.wg.Wait()
	// A check the stopped checker had already sent may still reach the
	// backend's handler just after: let it land before counting.
	time.Sleep(100 * time.Millisecond)
	n := b.checks.Load()
	time.Sleep(400 * time.Millisecond)
	if got := b.checks.Load(); got != n {
		t.Fatalf("%d checks after the cluster was removed", got-n)
	}
}

func TestHealthCheckValidation(t *testing.T) {
	m, st := testManager(t)
	for _, tc := range []struct {
		edit func(*corev3.HealthCheck)
		want string
	}{
		{func(h *corev3.HealthCheck) { h.Timeout = nil }, "health_checks[0]: timeout must be positive"},
		{func(h *corev3.HealthCheck) { h.UnhealthyThreshold = nil }, "health_checks[0]: unhealthy_threshold is required"},
		{func(h *corev3.HealthCheck) { h.HealthChecker = nil }, "health_checks[0]: one of http_health_check"},
		{func(h *corev3.HealthCheck) {
			h.HealthChecker = &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: &corev3.HealthCheck_HttpHealthCheck{Path: "/",
				ExpectedStatuses: []*typev3.Int64Range{{Start: 300, End: 200}}}}
		}, "health_checks[0]: http_health_check.expected_statuses[0] [300, 200) is not a range"},
		{func(h *corev3.HealthCheck) {
			h.HealthChecker = &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: &corev3.HealthCheck_HttpHealthCheck{Path: "health"}}
		}, `health_checks[0]: http_health_check.path "health" must start with /`},
		{func(h *corev3.HealthCheck) {
			h.HealthChecker = &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &corev3.HealthCheck_TcpHealthCheck{
				Send: &corev3.HealthCheck_Payload{Payload: &corev3.HealthCheck_Payload_Text{Text: "ping"}}}}
		}, "health_checks[0]: tcp_health_check.send: text is not hex"},
	} {
		hc := healthCheck(&corev3.HealthCheck_HttpHealthCheck{Path: "/"})
		tc.edit(hc)
		_, err := prepare(m, st, withHealthCheck(staticCluster("v", addrs(1)), hc))
		if !errContains(err, `cluster "v": `+tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}

// TestHealthCheckMembershipUpdates: an EDS update keeps the health of the
// hosts that stay, checks the new ones before they get traffic, and stops
// checking the ones that left.
func TestHealthCheckMembershipUpdates(t *testing.T) {
	a, a2, b, c := newBackend(t, "a"), newBackend(t, "a2"), newBackend(t, "b"), newBackend(t, "c")
	b.status.Store(500)
	m, st := testManager(t)
	def := withHealthCheck(staticCluster("e", nil), healthCheck(&corev3.HealthCheck_HttpHealthCheck{Path: "/health"}))
	def.LoadAssignment = nil
	def.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
	def.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}, ResourceApiVersion: corev3.ApiVersion_V3,
	}}
	apply := func(addrs ...string) *Cluster {
		t.Helper()
		cla := staticCluster("e", addrs).GetLoadAssignment()
		p, err := m.Prepare(map[string]*clusterv3.Cluster{"e": def}, map[string]*endpointv3.ClusterLoadAssignment{"e": cla}, st)
		if err != nil {
			t.Fatal(err)
		}
		p.Commit(time.Second)
		return p.Get("e")
	}
	cl := apply(a.addr, a2.addr, b.addr)
	waitFor(t, 5*time.Second, "b out", func() bool { return b.checks.Load() >= 2 && picks(cl, 30)[b.addr] == 0 })
	// c is new: unhealthy until its first check, counted for the panic
	// threshold as in Envoy (2 of 4 usable is not below 50%).
	if apply(a.addr, a2.addr, b.addr, c.addr) != cl {
		t.Fatal("an EDS update replaced the cluster")
	}
	if got := picks(cl, 30); got[b.addr] != 0 {
		t.Fatalf("b got traffic right after the update: %v", got)
	}
	waitFor(t, 5*time.Second, "c in after its first check", func() bool { return picks(cl, 30)[c.addr] > 0 })
	apply(a.addr, a2.addr, c.addr)
	time.Sleep(150 * time.Millisecond) // a check in flight may still land
	n := b.checks.Load()
	time.Sleep(400 * time.Millisecond)
	if b.checks.Load() != n {
		t.Fatal("b is still checked after it left")
	}
}
