package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// The inbound policies, enforced by the destination's own sidecar:
// MeshFaultInjection and MeshRateLimit, each on a service of its own.
func TestPolicyInbound(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})

	faulty := startTestApp(t, "faulty-1")
	limited := startTestApp(t, "limited-1")
	startDP(t, cp, "faulty-1", serviceDP(t, "faulty-1", "faulty", "http", faulty.port))
	startDP(t, cp, "limited-1", serviceDP(t, "limited-1", "limited", "http", limited.port))
	toFaulty, toLimited := freePort(t), freePort(t)
	startDP(t, cp, "client-1", clientDP(t, "client-1", map[int]string{toFaulty: "faulty", toLimited: "limited"}))
	c := newClient()
	url := func(port int) string { return fmt.Sprintf("http://127.0.0.1:%d/", port) }
	for _, port := range []int{toFaulty, toLimited} {
		eventually(t, 10*time.Second, "traffic through the mesh", func() error { _, err := get(c, url(port)); return err })
	}

	t.Run("MeshFaultInjection", func(t *testing.T) {
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

	t.Run("MeshRateLimit", func(t *testing.T) {
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
			// Tokens refill at 10/s while the burst runs.
			allowed := 10 + int(took.Seconds()*10) + 1
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
}
