package e2e

import (
	"bufio"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// The inbound policies, enforced by the destination's own sidecar:
// MeshFaultInjection and MeshRateLimit, each on a service of its own.
func TestPolicyInbound(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})

	faulty := startTestApp(t, "faulty-1")
	limited := startTestApp(t, "limited-1")
	delayed := startTestApp(t, "delayed-1")
	startDP(t, cp, "faulty-1", serviceDP(t, "faulty-1", "faulty", "http", faulty.port))
	startDP(t, cp, "limited-1", serviceDP(t, "limited-1", "limited", "http", limited.port))
	startDP(t, cp, "delayed-1", serviceDP(t, "delayed-1", "delayed", "http", delayed.port))
	startDP(t, cp, "conns-1", serviceDP(t, "conns-1", "conns", "tcp", startEchoApp(t, "conns-1")))
	inslow := startTestApp(t, "inslow-1")
	startDP(t, cp, "inslow-1", "labels:\n  app: inslow\n"+serviceDP(t, "inslow-1", "inslow", "http", inslow.port))
	inbusy := startTestApp(t, "inbusy-1")
	startDP(t, cp, "inbusy-1", serviceDP(t, "inbusy-1", "inbusy", "http", inbusy.port))
	toFaulty, toLimited, toDelayed, toConns, toInslow, toInbusy := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	startDP(t, cp, "client-1", clientDP(t, "client-1", map[int]string{toFaulty: "faulty", toLimited: "limited", toDelayed: "delayed", toConns: "conns", toInslow: "inslow", toInbusy: "inbusy"}))
	c := newClient()
	url := func(port int) string { return fmt.Sprintf("http://127.0.0.1:%d/", port) }
	for _, port := range []int{toFaulty, toLimited, toDelayed, toInslow, toInbusy} {
		eventually(t, 10*time.Second, "traffic through the mesh", func() error { _, err := get(c, url(port)); return err })
	}

	t.Run("MeshFaultInjection/Abort", func(t *testing.T) {
		applyYAML(t, cp, `type: MeshFaultInjection
name: faulty-abort
mesh: default
spec:
  targetRef:
    kind: MeshService
    name: faulty
  from:
  - targetRef:
      kind: Mesh
    default:
      http:
      - abort:
          httpStatus: 418
          percentage: 100
`)
		within(t, cp, "faulty-1", 15*time.Second, "the configured abort status", func() error {
			a, err := request(c, http.MethodGet, url(toFaulty))
			if err == nil && a.status != http.StatusTeapot {
				err = fmt.Errorf("status %d from %q", a.status, a.instance)
			}
			return err
		})
		before := faulty.requests.Load()
		for i := range 20 {
			a, err := request(c, http.MethodGet, url(toFaulty))
			if err != nil || a.status != http.StatusTeapot {
				t.Fatalf("request %d under a 100%% abort: status %d %v", i+1, a.status, err)
			}
		}
		if n := faulty.requests.Load() - before; n != 0 {
			t.Fatalf("%d aborted requests reached the app", n)
		}
	})

	t.Run("MeshFaultInjection/Delay", func(t *testing.T) {
		applyYAML(t, cp, `type: MeshFaultInjection
name: delayed-1s
mesh: default
spec:
  targetRef:
    kind: MeshService
    name: delayed
  from:
  - targetRef:
      kind: Mesh
    default:
      http:
      - delay:
          value: 1s
          percentage: 100
`)
		check := func() error {
			a, err := request(c, http.MethodGet, url(toDelayed))
			if err != nil {
				return err
			}
			if a.status != http.StatusOK || a.instance != "delayed-1" || a.took < time.Second {
				return fmt.Errorf("status %d from %q after %s, want 200 from delayed-1 after at least 1 s", a.status, a.instance, a.took.Round(time.Millisecond))
			}
			return nil
		}
		within(t, cp, "delayed-1", 15*time.Second, "answers delayed by 1 s", check)
		for range 2 {
			if err := check(); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("MeshRateLimit/HTTP", func(t *testing.T) {
		applyYAML(t, cp, `type: MeshRateLimit
name: limited-10rps
mesh: default
spec:
  targetRef:
    kind: MeshService
    name: limited
  from:
  - targetRef:
      kind: Mesh
    default:
      local:
        http:
          requestRate:
            num: 10
            interval: 1s
          onRateLimit:
            status: 429
            headers:
              add:
              - name: x-rate-limited
                value: "yes"
`)
		// 40 requests at once, sent as fast as they go: about 10 pass,
		// the rest get 429 from the sidecar.
		burst := func() (ok, limitedN int, took time.Duration, err error) {
			start := time.Now()
			for range 40 {
				a, err := request(c, http.MethodGet, url(toLimited))
				if err != nil {
					return ok, limitedN, 0, err
				}
				switch a.status {
				case http.StatusOK:
					ok++
				case http.StatusTooManyRequests:
					limitedN++
					if a.header.Get("X-Rate-Limited") != "yes" {
						return ok, limitedN, 0, fmt.Errorf("a 429 without x-rate-limited: yes: %v", a.header)
					}
				default:
					return ok, limitedN, 0, fmt.Errorf("status %d: %s", a.status, a.body)
				}
			}
			return ok, limitedN, time.Since(start), nil
		}
		within(t, cp, "limited-1", 15*time.Second, "429s beyond 10 req/s", func() error {
			ok, limitedN, took, err := burst()
			if err != nil {
				return err
			}
			// A full bucket, plus one refill of 10 per started second.
			allowed := 10 * (1 + int(math.Ceil(took.Seconds())))
			if ok == 0 || limitedN == 0 || ok > allowed {
				return fmt.Errorf("%d passed and %d were limited in %s (at most %d may pass)", ok, limitedN, took.Round(time.Millisecond), allowed)
			}
			return nil
		})
		// After a quiet second the bucket is full again.
		time.Sleep(1100 * time.Millisecond)
		if a, err := request(c, http.MethodGet, url(toLimited)); err != nil || a.status != http.StatusOK {
			t.Fatalf("after a second's rest: status %d %v", a.status, err)
		}
	})

	t.Run("MeshRateLimit/TCP", func(t *testing.T) {
		// Each connection sends a line and waits for its echo; a connection
		// the backend's sidecar refuses closes without one.
		echoes := func(n int) (ok, closed int) {
			for range n {
				conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", toConns), 3*time.Second)
				if err != nil {
					closed++
					continue
				}
				conn.SetDeadline(time.Now().Add(3 * time.Second))
				fmt.Fprintf(conn, "hi\n")
				if line, err := bufio.NewReader(conn).ReadString('\n'); err == nil && line == "conns-1:hi\n" {
					ok++
				} else {
					closed++
				}
				conn.Close()
			}
			return ok, closed
		}
		if ok, closed := echoes(10); ok != 10 {
			t.Fatalf("before the policy: %d echoed, %d closed", ok, closed)
		}
		applyYAML(t, cp, `type: MeshRateLimit
name: conns-3-per-second
mesh: default
spec:
  targetRef:
    kind: MeshService
    name: conns
  from:
  - targetRef:
      kind: Mesh
    default:
      local:
        tcp:
          connectionRate:
            num: 3
            interval: 1s
`)
		within(t, cp, "conns-1", 15*time.Second, "connections beyond 3/s refused", func() error {
			start := time.Now()
			ok, closed := echoes(12)
			allowed := 3 * (1 + int(math.Ceil(time.Since(start).Seconds())))
			if ok == 0 || closed == 0 || ok > allowed {
				return fmt.Errorf("%d echoed and %d closed (at most %d may pass)", ok, closed, allowed)
			}
			return nil
		})
	})

	t.Run("MeshTimeout/Inbound", func(t *testing.T) {
		// The backend's own sidecar times the request out; the client's
		// retries of gateway errors (the default MeshRetry) are turned
		// off for this service so the 504 comes back at once.
		applyYAML(t, cp, `type: MeshRetry
name: inslow-no-retries
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: inslow
    default:
      http:
        numRetries: 0
`)
		applyYAML(t, cp, `type: MeshTimeout
name: inslow-inbound
mesh: default
spec:
  targetRef:
    kind: Dataplane
    labels:
      app: inslow
  rules:
  - default:
      http:
        requestTimeout: 500ms
`)
		check := func() error {
			a, err := request(c, http.MethodGet, url(toInslow)+"?delay=2s")
			if err != nil {
				return err
			}
			if a.status != http.StatusGatewayTimeout || a.took >= 1500*time.Millisecond {
				return fmt.Errorf("status %d after %s, want 504 in about 0.5 s", a.status, a.took.Round(time.Millisecond))
			}
			return nil
		}
		within(t, cp, "inslow-1", 15*time.Second, "a 504 from the backend's sidecar after 500 ms", check)
		if err := check(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("MeshCircuitBreaker/Inbound", func(t *testing.T) {
		applyYAML(t, cp, `type: MeshCircuitBreaker
name: inbusy-inbound
mesh: default
spec:
  targetRef:
    kind: MeshService
    name: inbusy
  from:
  - targetRef:
      kind: Mesh
    default:
      connectionLimits:
        maxConnections: 1
        maxPendingRequests: 1
        maxRequests: 1
`)
		within(t, cp, "inbusy-1", 15*time.Second, "overflow 503s from the backend's sidecar next to successes", func() error {
			var mu sync.Mutex
			var wg sync.WaitGroup
			ok, overflow := 0, 0
			var other []string
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a, err := request(c, http.MethodGet, url(toInbusy)+"?delay=400ms")
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil && a.status == http.StatusOK:
						ok++
					case err == nil && a.status == http.StatusServiceUnavailable:
						overflow++
					default:
						other = append(other, fmt.Sprintf("%d %v", a.status, err))
					}
				}()
			}
			wg.Wait()
			if ok == 0 || overflow == 0 || len(other) > 0 {
				return fmt.Errorf("%d ok, %d overflowed, other: %v", ok, overflow, other)
			}
			return nil
		})
	})
	noNacks(t, cp)
}
