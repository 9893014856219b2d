package e2e

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcApp is a gRPC application for the policy tests: the standard health
// service, whose overall status ("") the sidecars' health checks read and
// whose "greeter" status the test calls. Every answer carries the
// instance in the x-instance header (failures excepted); setFailures makes the first n of
// every m "greeter" calls fail with UNAVAILABLE.
type grpcApp struct {
	instance     string
	port         int
	health       *health.Server
	failN, failM atomic.Int64
	calls        atomic.Int64
	healthChecks atomic.Int64
}

func startGRPCApp(t *testing.T, instance string) *grpcApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := &grpcApp{instance: instance, port: ln.Addr().(*net.TCPAddr).Port, health: health.NewServer()}
	app.health.SetServingStatus("greeter", healthpb.HealthCheckResponse_SERVING)
	srv := grpc.NewServer(grpc.UnaryInterceptor(app.intercept))
	healthpb.RegisterHealthServer(srv, app.health)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return app
}

func (a *grpcApp) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	r, _ := req.(*healthpb.HealthCheckRequest)
	if r != nil && r.Service == "" {
		a.healthChecks.Add(1)
	}
	if r != nil && r.Service == "greeter" {
		n := a.calls.Add(1)
		if fn, fm := a.failN.Load(), a.failM.Load(); fm > 0 && (n-1)%fm < fn {
			// No header metadata before a failure: the answer stays
			// "trailers-only", where proxies read grpc-status for retries.
			return nil, status.Error(codes.Unavailable, "failing on purpose")
		}
	}
	grpc.SetHeader(ctx, metadata.Pairs("x-instance", a.instance))
	return next(ctx, req)
}

func (a *grpcApp) setFailures(n, m int64) {
	a.failM.Store(0)
	a.calls.Store(0)
	a.failN.Store(n)
	a.failM.Store(m)
}

// greet calls Check("greeter") through conn with outgoing metadata pairs
// and returns the instance that answered.
func greet(conn *grpc.ClientConn, kv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, kv...)
	var md metadata.MD
	_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "greeter"}, grpc.Header(&md))
	inst := ""
	if v := md.Get("x-instance"); len(v) > 0 {
		inst = v[0]
	}
	return inst, err
}

// greetMany makes n calls and counts the answering instances; the first
// failed call is the error.
func greetMany(conn *grpc.ClientConn, n int, kv ...string) (map[string]int, error) {
	seen := map[string]int{}
	for range n {
		inst, err := greet(conn, kv...)
		if err != nil {
			return seen, err
		}
		seen[inst]++
	}
	return seen, nil
}

// The traffic policies on gRPC services: MeshHTTPRoute header matches,
// MeshRetry on gRPC status, MeshHealthCheck with the gRPC health protocol.
func TestPolicyGRPC(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})
	for _, v := range []string{"v1", "v2"} {
		app := startGRPCApp(t, "greet-"+v)
		startDP(t, cp, app.instance, taggedDP(t, app.instance, "greet", "grpc", app.port, map[string]string{"version": v}))
	}
	flaky := startGRPCApp(t, "gflaky-1")
	startDP(t, cp, flaky.instance, serviceDP(t, flaky.instance, "gflaky", "grpc", flaky.port))
	var hc []*grpcApp
	for i := 1; i <= 3; i++ {
		app := startGRPCApp(t, fmt.Sprintf("ghc-%d", i))
		startDP(t, cp, app.instance, serviceDP(t, app.instance, "ghc", "grpc", app.port))
		hc = append(hc, app)
	}
	toGreet, toFlaky, toHC := freePort(t), freePort(t), freePort(t)
	startDP(t, cp, "client-1", clientDP(t, "client-1", map[int]string{toGreet: "greet", toFlaky: "gflaky", toHC: "ghc"}))
	dial := func(port int) *grpc.ClientConn {
		conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	greetConn, flakyConn, hcConn := dial(toGreet), dial(toFlaky), dial(toHC)
	for _, conn := range []*grpc.ClientConn{greetConn, flakyConn, hcConn} {
		eventually(t, 10*time.Second, "gRPC through the mesh", func() error { _, err := greet(conn); return err })
	}

	t.Run("MeshHTTPRoute/HeaderToSubset", func(t *testing.T) {
		applyYAML(t, cp, `type: MeshHTTPRoute
name: greet-v2
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: greet
    rules:
    - matches:
      - headers:
        - type: Exact
          name: x-version
          value: v2
      default:
        backendRefs:
        - kind: MeshServiceSubset
          name: greet
          tags:
            version: v2
`)
		within(t, cp, "client-1", 15*time.Second, "x-version: v2 calls routed to the v2 subset only", func() error {
			seen, err := greetMany(greetConn, 20, "x-version", "v2")
			if err == nil && seen["greet-v2"] != 20 {
				err = fmt.Errorf("answers %v", seen)
			}
			return err
		})
		seen, err := greetMany(greetConn, 20)
		if err != nil || seen["greet-v1"] == 0 || seen["greet-v2"] == 0 {
			t.Fatalf("calls without the header: answers %v, %v", seen, err)
		}
	})

	t.Run("MeshRetry/GRPC", func(t *testing.T) {
		// The default MeshRetry retries UNAVAILABLE too: without it, two
		// of three calls fail.
		cp.mustCtl("", "delete", "meshretry", "mesh-retry-all-default", "-m", "default")
		flaky.setFailures(2, 3)
		within(t, cp, "client-1", 10*time.Second, "failures to reach the client without retries", func() error {
			if seen, err := greetMany(flakyConn, 3); err == nil {
				return fmt.Errorf("3 calls answered by %v", seen)
			}
			return nil
		})
		applyYAML(t, cp, `type: MeshRetry
name: gflaky-retry
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: gflaky
    default:
      grpc:
        numRetries: 3
        backOff:
          baseInterval: 10ms
          maxInterval: 50ms
        retryOn:
        - Unavailable
`)
		within(t, cp, "client-1", 15*time.Second, "every call answered with 3 retries on UNAVAILABLE", func() error {
			_, err := greetMany(flakyConn, 5)
			return err
		})
		if seen, err := greetMany(flakyConn, 20); err != nil {
			t.Fatalf("with retries: %v after %v", err, seen)
		}
	})

	t.Run("MeshHealthCheck/GRPC", func(t *testing.T) {
		const interval, unhealthyThreshold, slack = time.Second, 2, 3 * time.Second
		applyYAML(t, cp, fmt.Sprintf(`type: MeshHealthCheck
name: ghc-check
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: ghc
    default:
      interval: %s
      timeout: 500ms
      unhealthyThreshold: %d
      healthyThreshold: 1
      grpc: {}
`, interval, unhealthyThreshold))
		within(t, cp, "client-1", 15*time.Second, "health checks to reach every instance", func() error {
			for _, app := range hc {
				if app.healthChecks.Load() == 0 {
					return fmt.Errorf("no health check reached %s", app.instance)
				}
			}
			return nil
		})
		seen, err := greetMany(hcConn, 30)
		if err != nil || len(seen) != 3 {
			t.Fatalf("all serving: answers %v, %v", seen, err)
		}
		hc[1].health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		within(t, cp, "client-1", time.Duration(unhealthyThreshold)*interval+slack, "the NOT_SERVING instance to get no calls", func() error {
			seen, err := greetMany(hcConn, 20)
			if err == nil && seen["ghc-2"] > 0 {
				err = fmt.Errorf("answers %v", seen)
			}
			return err
		})
		seen, err = greetMany(hcConn, 60)
		if err != nil || seen["ghc-2"] > 0 || seen["ghc-1"] == 0 || seen["ghc-3"] == 0 {
			t.Fatalf("with ghc-2 not serving: answers %v, %v", seen, err)
		}
	})
	noNacks(t, cp)
}
