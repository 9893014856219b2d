package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// The outbound resilience policies, each on a service of its own behind one
// control plane and one client proxy: MeshTimeout, MeshRetry,
// MeshCircuitBreaker and MeshHealthCheck change what the client sees.
func TestPolicyResilience(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})

	slow := startTestApp(t, "slow-1")
	flaky := startTestApp(t, "flaky-1")
	busy := startTestApp(t, "busy-1")
	hc := []*testApp{startTestApp(t, "hc-1"), startTestApp(t, "hc-2"), startTestApp(t, "hc-3")}
	outlier := []*testApp{startTestApp(t, "outlier-1"), startTestApp(t, "outlier-2")}
	startDP(t, cp, "slow-1", serviceDP(t, "slow-1", "slow", "http", slow.port))
	startDP(t, cp, "flaky-1", serviceDP(t, "flaky-1", "flaky", "http", flaky.port))
	startDP(t, cp, "busy-1", serviceDP(t, "busy-1", "busy", "http", busy.port))
	for _, app := range hc {
		startDP(t, cp, app.instance, serviceDP(t, app.instance, "hc", "http", app.port))
	}
	for _, app := range outlier {
		startDP(t, cp, app.instance, serviceDP(t, app.instance, "outlier", "http", app.port))
	}
	startDP(t, cp, "idle-1", serviceDP(t, "idle-1", "idle", "tcp", startEchoApp(t, "idle-1")))
	toSlow, toFlaky, toBusy, toHC, toOutlier, toIdle := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	startDP(t, cp, "client-1", clientDP(t, "client-1", map[int]string{toSlow: "slow", toFlaky: "flaky", toBusy: "busy", toHC: "hc", toOutlier: "outlier", toIdle: "idle"}))
	c := newClient()
	url := func(port int) string { return fmt.Sprintf("http://127.0.0.1:%d/", port) }
	for _, port := range []int{toSlow, toFlaky, toBusy, toHC, toOutlier} {
		eventually(t, 10*time.Second, "traffic through the mesh", func() error { _, err := get(c, url(port)); return err })
	}

	t.Run("MeshTimeout/HTTPRequest", func(t *testing.T) {
		// Under the default policy (15 s) a 2 s answer gets through.
		a, err := request(c, http.MethodGet, url(toSlow)+"?delay=2s")
		if err != nil || a.status != http.StatusOK {
			t.Fatalf("a 2 s answer under the default timeout: %+v %v", a, err)
		}
		applyYAML(t, cp, `type: MeshTimeout
name: slow-timeout
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: slow
    default:
      http:
        requestTimeout: 500ms
`)
		check := func() error {
			a, err := request(c, http.MethodGet, url(toSlow)+"?delay=2s")
			if err != nil {
				return err
			}
			if a.status != http.StatusGatewayTimeout || a.took >= 1500*time.Millisecond {
				return fmt.Errorf("status %d after %s, want 504 in about 0.5 s", a.status, a.took.Round(time.Millisecond))
			}
			return nil
		}
		within(t, cp, "client-1", 15*time.Second, "a 504 after the 500 ms request timeout", check)
		for range 3 {
			if err := check(); err != nil {
				t.Fatal(err)
			}
		}
		// Answers within the timeout still get through.
		if a, err := request(c, http.MethodGet, url(toSlow)+"?delay=100ms"); err != nil || a.status != http.StatusOK {
			t.Fatalf("a 100 ms answer under a 500 ms timeout: %d %v", a.status, err)
		}
	})

	t.Run("MeshTimeout/TCPIdle", func(t *testing.T) {
		// How long an echoed connection stays open after its last byte.
		openFor := func(wait time.Duration) (time.Duration, error) {
			conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", toIdle), 3*time.Second)
			if err != nil {
				return 0, err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(3 * time.Second))
			r := bufio.NewReader(conn)
			fmt.Fprintf(conn, "hi\n")
			if line, err := r.ReadString('\n'); err != nil || line != "idle-1:hi\n" {
				return 0, fmt.Errorf("echo %q %v", line, err)
			}
			start := time.Now()
			conn.SetDeadline(start.Add(wait))
			if _, err := r.ReadByte(); err == nil {
				return 0, fmt.Errorf("unexpected data")
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return wait, nil // still open
			}
			return time.Since(start), nil
		}
		if open, err := openFor(1500 * time.Millisecond); err != nil || open < 1500*time.Millisecond {
			t.Fatalf("under the default (1 h) idle timeout the connection closed after %s: %v", open, err)
		}
		applyYAML(t, cp, `type: MeshTimeout
name: idle-tcp
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: idle
    default:
      idleTimeout: 500ms
`)
		within(t, cp, "client-1", 15*time.Second, "an idle connection closed after 500 ms", func() error {
			open, err := openFor(2500 * time.Millisecond)
			if err == nil && (open < 250*time.Millisecond || open >= 2500*time.Millisecond) {
				err = fmt.Errorf("closed after %s", open)
			}
			return err
		})
	})

	t.Run("MeshRetry/HTTP", func(t *testing.T) {
		// Without any retry policy two of three requests fail.
		cp.mustCtl("", "delete", "meshretry", "mesh-retry-all-default", "-m", "default")
		flaky.setFailures(2, 3)
		within(t, cp, "client-1", 10*time.Second, "failures to reach the client without retries", func() error {
			failed := 0
			for range 6 {
				if a, err := request(c, http.MethodGet, url(toFlaky)); err == nil && a.status == http.StatusInternalServerError {
					failed++
				}
			}
			if failed < 3 {
				return fmt.Errorf("%d of 6 requests failed, want the app's 4", failed)
			}
			return nil
		})

		applyYAML(t, cp, `type: MeshRetry
name: flaky-retry
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: flaky
    default:
      http:
        numRetries: 3
        backOff:
          baseInterval: 10ms
          maxInterval: 50ms
        retryOn:
        - 5xx
`)
		run := func(n int) error {
			for i := range n {
				a, err := request(c, http.MethodGet, url(toFlaky))
				if err != nil {
					return err
				}
				if a.status != http.StatusOK {
					return fmt.Errorf("request %d of %d: status %d", i+1, n, a.status)
				}
			}
			return nil
		}
		within(t, cp, "client-1", 15*time.Second, "every request answered 200 with 3 retries", func() error { return run(5) })
		before := flaky.requests.Load()
		if err := run(30); err != nil {
			t.Fatal(err)
		}
		if sent := flaky.requests.Load() - before; sent < 80 {
			t.Fatalf("30 requests reached the app only %d times: the retries did not happen there", sent)
		}
	})

	t.Run("MeshCircuitBreaker/ConnectionLimits", func(t *testing.T) {
		// 8 concurrent requests of 400 ms each: the default limits
		// (1024) let them all through.
		burst := func() (ok, overflow, other int, sample string) {
			var mu sync.Mutex
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a, err := request(c, http.MethodGet, url(toBusy)+"?delay=400ms")
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil && a.status == http.StatusOK:
						ok++
					case err == nil && a.status == http.StatusServiceUnavailable && a.header.Get("X-Envoy-Overloaded") == "true":
						overflow++
					default:
						other++
						sample = fmt.Sprintf("status %d %v %s", a.status, err, a.body)
					}
				}()
			}
			wg.Wait()
			return
		}
		if ok, overflow, other, sample := burst(); ok != 8 {
			t.Fatalf("under the default limits: %d ok, %d overflowed, %d other (%s)", ok, overflow, other, sample)
		}
		applyYAML(t, cp, `type: MeshCircuitBreaker
name: busy-limits
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: busy
    default:
      connectionLimits:
        maxConnections: 1
        maxPendingRequests: 1
        maxRequests: 1
`)
		within(t, cp, "client-1", 15*time.Second, "overflow 503s next to successes", func() error {
			ok, overflow, other, sample := burst()
			if ok == 0 || overflow == 0 || other > 0 {
				return fmt.Errorf("%d ok, %d overflowed (503 x-envoy-overloaded), %d other (%s)", ok, overflow, other, sample)
			}
			return nil
		})
	})

	t.Run("MeshCircuitBreaker/OutlierDetection", func(t *testing.T) {
		// outlier-2 answers every request with 500: round robin sends it
		// half the requests until outlier detection ejects it.
		outlier[1].setFailures(1, 1)
		failures := func(n int) (int, error) {
			failed := 0
			for range n {
				a, err := request(c, http.MethodGet, url(toOutlier))
				if err != nil {
					return failed, err
				}
				if a.status != http.StatusOK {
					failed++
				}
			}
			return failed, nil
		}
		if failed, err := failures(10); err != nil || failed == 0 {
			t.Fatalf("before the policy: %d of 10 failed, %v", failed, err)
		}
		applyYAML(t, cp, `type: MeshCircuitBreaker
name: outlier-ejection
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: outlier
    default:
      outlierDetection:
        interval: 1s
        baseEjectionTime: 30s
        maxEjectionPercent: 50
        detectors:
          totalFailures:
            consecutive: 3
`)
		within(t, cp, "client-1", 15*time.Second, "the failing endpoint ejected", func() error {
			if failed, err := failures(20); err != nil || failed > 0 {
				return fmt.Errorf("%d of 20 failed, %v", failed, err)
			}
			return nil
		})
		seen, err := count(c, url(toOutlier), 50, 2)
		if err != nil || seen["outlier-1"] != 50 {
			t.Fatalf("after the ejection: answers %v, %v", seen, err)
		}
	})

	t.Run("MeshHealthCheck/HTTP", func(t *testing.T) {
		const interval, unhealthyThreshold, slack = time.Second, 2, 3 * time.Second
		applyYAML(t, cp, fmt.Sprintf(`type: MeshHealthCheck
name: hc-check
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: hc
    default:
      interval: %s
      timeout: 500ms
      unhealthyThreshold: %d
      healthyThreshold: 1
      http:
        path: /health
        expectedStatuses: [200]
`, interval, unhealthyThreshold))
		within(t, cp, "client-1", 15*time.Second, "health checks to reach every instance", func() error {
			for _, app := range hc {
				if app.healthChecks.Load() == 0 {
					return fmt.Errorf("no health check reached %s", app.instance)
				}
			}
			return nil
		})
		seen, err := count(c, url(toHC), 30, 1)
		if err != nil || len(seen) != 3 {
			t.Fatalf("all healthy: answers %v, %v", seen, err)
		}

		hc[1].setHealthy(false)
		flipped := time.Now()
		limit := time.Duration(unhealthyThreshold)*interval + slack
		within(t, cp, "client-1", limit, "the failing instance to get no traffic", func() error {
			seen, err := count(c, url(toHC), 20, 1)
			if err == nil && seen["hc-2"] > 0 {
				err = fmt.Errorf("answers %v", seen)
			}
			return err
		})
		t.Logf("hc-2 left the rotation %s after its health check began failing", time.Since(flipped).Round(time.Millisecond))
		seen, err = count(c, url(toHC), 100, 2)
		if err != nil || seen["hc-2"] > 0 || seen["hc-1"] == 0 || seen["hc-3"] == 0 {
			t.Fatalf("with hc-2 unhealthy: answers %v, %v", seen, err)
		}

		hc[1].setHealthy(true)
		within(t, cp, "client-1", limit, "the instance to come back once healthy", func() error {
			seen, err := count(c, url(toHC), 30, 1)
			if err == nil && seen["hc-2"] == 0 {
				err = fmt.Errorf("answers %v", seen)
			}
			return err
		})
	})
	noNacks(t, cp)
}
