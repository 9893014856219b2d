package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// The routing policies, each on services of its own behind one control
// plane and one client proxy: MeshHTTPRoute (a header match to a tag
// subset, a weighted split), MeshLoadBalancingStrategy (RingHash on a
// header) and MeshTCPRoute (a weighted split of connections).
func TestPolicyRouting(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})

	versioned := func(service string) {
		for _, v := range []string{"v1", "v2"} {
			name := service + "-" + v
			app := startTestApp(t, name)
			startDP(t, cp, name, taggedDP(t, name, service, "http", app.port, map[string]string{"version": v}))
		}
	}
	versioned("hdr")
	versioned("split")
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("hash-%d", i)
		app := startTestApp(t, name)
		startDP(t, cp, name, serviceDP(t, name, "hash", "http", app.port))
	}
	startDP(t, cp, "tcp-a-1", serviceDP(t, "tcp-a-1", "tcp-a", "tcp", startEchoApp(t, "tcp-a-1")))
	startDP(t, cp, "tcp-b-1", serviceDP(t, "tcp-b-1", "tcp-b", "tcp", startEchoApp(t, "tcp-b-1")))
	toHdr, toSplit, toHash, toTCP := freePort(t), freePort(t), freePort(t), freePort(t)
	startDP(t, cp, "client-1", clientDP(t, "client-1", map[int]string{toHdr: "hdr", toSplit: "split", toHash: "hash", toTCP: "tcp-a"}))
	c := newClient()
	url := func(port int) string { return fmt.Sprintf("http://127.0.0.1:%d/", port) }
	for _, port := range []int{toHdr, toSplit, toHash} {
		eventually(t, 10*time.Second, "traffic through the mesh", func() error { _, err := get(c, url(port)); return err })
	}

	t.Run("MeshHTTPRoute/HeaderToSubset", func(t *testing.T) {
		applyYAML(t, cp, `type: MeshHTTPRoute
name: hdr-v2
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: hdr
    rules:
    - matches:
      - headers:
        - type: Exact
          name: x-version
          value: v2
      default:
        backendRefs:
        - kind: MeshServiceSubset
          name: hdr
          tags:
            version: v2
`)
		within(t, cp, "client-1", 15*time.Second, "x-version: v2 routed to the v2 subset only", func() error {
			seen, err := count(c, url(toHdr), 20, 1, "x-version", "v2")
			if err == nil && (len(seen) != 1 || seen["hdr-v2"] != 20) {
				err = fmt.Errorf("answers %v", seen)
			}
			return err
		})
		seen, err := count(c, url(toHdr), 200, 4, "x-version", "v2")
		if err != nil || seen["hdr-v2"] != 200 {
			t.Fatalf("with the header: answers %v, %v", seen, err)
		}
		// Without the header (or with another value) the whole service answers.
		seen, err = count(c, url(toHdr), 40, 1, "x-version", "v1")
		if err != nil || seen["hdr-v1"] == 0 || seen["hdr-v2"] == 0 {
			t.Fatalf("without a match: answers %v, %v", seen, err)
		}
	})

	t.Run("MeshHTTPRoute/WeightedSplit", func(t *testing.T) {
		applyYAML(t, cp, `type: MeshHTTPRoute
name: split-90-10
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: split
    rules:
    - matches:
      - path:
          type: PathPrefix
          value: /
      default:
        backendRefs:
        - kind: MeshServiceSubset
          name: split
          tags:
            version: v1
          weight: 90
        - kind: MeshServiceSubset
          name: split
          tags:
            version: v2
          weight: 10
`)
		// Wait for the route (before it, v1 gets half), then measure.
		within(t, cp, "client-1", 15*time.Second, "the split to take effect", func() error {
			seen, err := count(c, url(toSplit), 100, 4)
			if err == nil && seen["split-v1"] < 75 {
				err = fmt.Errorf("answers %v", seen)
			}
			return err
		})
		const n = 2000
		seen, err := count(c, url(toSplit), n, 4)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("split over %d requests: %v", n, seen)
		if s := float64(seen["split-v1"]) / n; s < 0.85 || s > 0.95 || seen["split-v1"]+seen["split-v2"] != n {
			t.Fatalf("a 90/10 split answered %v: v1 share %.3f, want 0.90 ± 0.05", seen, s)
		}
	})

	t.Run("MeshLoadBalancingStrategy/RingHash", func(t *testing.T) {
		// Round robin first: one user's requests go everywhere.
		seen, err := count(c, url(toHash), 9, 1, "x-user", "user-0")
		if err != nil || len(seen) < 2 {
			t.Fatalf("before the policy: answers %v, %v", seen, err)
		}
		applyYAML(t, cp, `type: MeshLoadBalancingStrategy
name: hash-by-user
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: hash
    default:
      loadBalancer:
        type: RingHash
        ringHash:
          hashPolicies:
          - type: Header
            header:
              name: x-user
`)
		sticky := func(user string, n int) (string, error) {
			seen, err := count(c, url(toHash), n, 2, "x-user", user)
			if err != nil {
				return "", err
			}
			if len(seen) != 1 {
				return "", fmt.Errorf("%s answered by %v", user, seen)
			}
			for inst := range seen {
				return inst, nil
			}
			return "", nil
		}
		within(t, cp, "client-1", 15*time.Second, "a user kept on one endpoint", func() error { _, err := sticky("user-0", 20); return err })
		owners := map[string]bool{}
		for i := range 12 {
			inst, err := sticky(fmt.Sprintf("user-%d", i), 30)
			if err != nil {
				t.Fatal(err)
			}
			owners[inst] = true
		}
		if len(owners) < 2 {
			t.Fatalf("12 users all hashed to %v: the header is not what is hashed", owners)
		}
	})

	t.Run("MeshTCPRoute", func(t *testing.T) {
		const n = 400
		dial := func() (string, error) {
			conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", toTCP), 3*time.Second)
			if err != nil {
				return "", err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(3 * time.Second))
			fmt.Fprintf(conn, "hi\n")
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil {
				return "", err
			}
			inst, _, _ := strings.Cut(line, ":")
			return inst, nil
		}
		connections := func(n int) (map[string]int, error) {
			var mu sync.Mutex
			var wg sync.WaitGroup
			seen := map[string]int{}
			var firstErr error
			sem := make(chan struct{}, 4)
			for range n {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; wg.Done() }()
					inst, err := dial()
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						firstErr = cmpErr(firstErr, err)
						return
					}
					seen[inst]++
				}()
			}
			wg.Wait()
			return seen, firstErr
		}
		eventually(t, 10*time.Second, "TCP through the mesh", func() error { _, err := dial(); return err })
		if seen, err := connections(20); err != nil || seen["tcp-a-1"] != 20 {
			t.Fatalf("before the route: connections %v, %v", seen, err)
		}
		applyYAML(t, cp, `type: MeshTCPRoute
name: tcp-a-split
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: tcp-a
    rules:
    - default:
        backendRefs:
        - kind: MeshService
          name: tcp-a
          weight: 75
        - kind: MeshService
          name: tcp-b
          weight: 25
`)
		within(t, cp, "client-1", 15*time.Second, "connections to reach tcp-b", func() error {
			seen, err := connections(40)
			if err == nil && seen["tcp-b-1"] == 0 {
				err = fmt.Errorf("connections %v", seen)
			}
			return err
		})
		seen, err := connections(n)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("TCP split over %d connections: %v", n, seen)
		if b := float64(seen["tcp-b-1"]) / n; b < 0.15 || b > 0.35 || seen["tcp-a-1"]+seen["tcp-b-1"] != n {
			t.Fatalf("a 75/25 split of connections gave %v: tcp-b share %.3f, want 0.25 ± 0.10", seen, b)
		}
	})
}
