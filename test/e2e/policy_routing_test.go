package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
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

	apps := map[string]*testApp{}
	versioned := func(service string) {
		for _, v := range []string{"v1", "v2"} {
			name := service + "-" + v
			apps[name] = startTestApp(t, name)
			startDP(t, cp, name, taggedDP(t, name, service, "http", apps[name].port, map[string]string{"version": v}))
		}
	}
	versioned("hdr")
	versioned("split")
	versioned("mir")
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("hash-%d", i)
		app := startTestApp(t, name)
		startDP(t, cp, name, serviceDP(t, name, "hash", "http", app.port))
	}
	filt := startTestApp(t, "filt-1")
	startDP(t, cp, "filt-1", serviceDP(t, "filt-1", "filt", "http", filt.port))
	zonedDPs := map[string]*proxy{}
	for _, zone := range []string{"east", "west"} {
		name := "zoned-" + zone
		app := startTestApp(t, name)
		zonedDPs[zone] = startDP(t, cp, name, taggedDP(t, name, "zoned", "http", app.port, map[string]string{"kuma.io/zone": zone}))
	}
	startDP(t, cp, "tcp-a-1", serviceDP(t, "tcp-a-1", "tcp-a", "tcp", startEchoApp(t, "tcp-a-1")))
	startDP(t, cp, "tcp-b-1", serviceDP(t, "tcp-b-1", "tcp-b", "tcp", startEchoApp(t, "tcp-b-1")))
	toHdr, toSplit, toHash, toTCP, toFilt, toMir := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	startDP(t, cp, "client-1", clientDP(t, "client-1", map[int]string{toHdr: "hdr", toSplit: "split", toHash: "hash", toTCP: "tcp-a", toFilt: "filt", toMir: "mir"}))
	c := newClient()
	url := func(port int) string { return fmt.Sprintf("http://127.0.0.1:%d/", port) }
	for _, port := range []int{toHdr, toSplit, toHash, toFilt, toMir} {
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

	t.Run("MeshHTTPRoute/Filters", func(t *testing.T) {
		applyYAML(t, cp, `type: MeshHTTPRoute
name: filt-filters
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: filt
    rules:
    - matches:
      - path:
          type: PathPrefix
          value: /v1
      default:
        filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set:
            - name: x-added
              value: "yes"
            remove:
            - x-drop
        - type: ResponseHeaderModifier
          responseHeaderModifier:
            add:
            - name: x-resp
              value: "yes"
        - type: URLRewrite
          urlRewrite:
            hostname: filt.internal
            path:
              type: ReplacePrefixMatch
              replacePrefixMatch: /api
        backendRefs:
        - kind: MeshService
          name: filt
    - matches:
      - path:
          type: PathPrefix
          value: /old
      default:
        filters:
        - type: RequestRedirect
          requestRedirect:
            scheme: https
            hostname: new.example.com
            port: 8443
            statusCode: 301
            path:
              type: ReplacePrefixMatch
              replacePrefixMatch: /new
`)
		within(t, cp, "client-1", 15*time.Second, "header edits and the rewrite", func() error {
			a, err := request(c, http.MethodGet, url(toFilt)+"v1/items", "x-drop", "1", "x-keep", "1")
			if err != nil {
				return err
			}
			var got appAnswer
			if err := json.Unmarshal([]byte(a.body), &got); err != nil || a.status != http.StatusOK {
				return fmt.Errorf("status %d: %s", a.status, a.body)
			}
			h := http.Header(got.Headers)
			if got.Path != "/api/items" || got.Host != "filt.internal" || h.Get("X-Added") != "yes" || h.Get("X-Drop") != "" || h.Get("X-Keep") != "1" || a.header.Get("X-Resp") != "yes" {
				return fmt.Errorf("the app saw %s %s with headers %v; the client got x-resp %q", got.Host, got.Path, got.Headers, a.header.Get("X-Resp"))
			}
			return nil
		})
		noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		within(t, cp, "client-1", 15*time.Second, "the redirect", func() error {
			a, err := request(noFollow, http.MethodGet, url(toFilt)+"old/page")
			if err != nil {
				return err
			}
			if loc := a.header.Get("Location"); a.status != http.StatusMovedPermanently || loc != "https://new.example.com:8443/new/page" {
				return fmt.Errorf("status %d, location %q", a.status, loc)
			}
			return nil
		})
		// Paths no rule matches still reach the service unchanged.
		a, err := request(c, http.MethodGet, url(toFilt)+"other")
		if err != nil || a.status != http.StatusOK || !strings.Contains(a.body, `"path":"/other"`) {
			t.Fatalf("an unmatched path: %d %s %v", a.status, a.body, err)
		}
	})

	t.Run("MeshHTTPRoute/MirrorMethodQuery", func(t *testing.T) {
		applyYAML(t, cp, `type: MeshHTTPRoute
name: mir-routes
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: mir
    rules:
    - matches:
      - path:
          type: Exact
          value: /mirror
        method: POST
      default:
        filters:
        - type: RequestMirror
          requestMirror:
            percentage: 100
            backendRef:
              kind: MeshServiceSubset
              name: mir
              tags:
                version: v2
        backendRefs:
        - kind: MeshServiceSubset
          name: mir
          tags:
            version: v1
    - matches:
      - queryParams:
        - type: Exact
          name: pick
          value: v2
      default:
        backendRefs:
        - kind: MeshServiceSubset
          name: mir
          tags:
            version: v2
`)
		within(t, cp, "client-1", 15*time.Second, "?pick=v2 routed to the v2 subset only", func() error {
			seen, err := count(c, url(toMir)+"any?pick=v2", 20, 1)
			if err == nil && seen["mir-v2"] != 20 {
				err = fmt.Errorf("answers %v", seen)
			}
			return err
		})
		v1, v2 := apps["mir-v1"], apps["mir-v2"]
		before1, before2 := v1.requests.Load(), v2.requests.Load()
		for i := range 10 {
			a, err := request(c, http.MethodPost, url(toMir)+"mirror")
			if err != nil || a.status != http.StatusOK || a.instance != "mir-v1" {
				t.Fatalf("POST /mirror %d: status %d from %q, %v", i+1, a.status, a.instance, err)
			}
		}
		within(t, cp, "client-1", 5*time.Second, "the mirrored copies to reach v2", func() error {
			if n1, n2 := v1.requests.Load()-before1, v2.requests.Load()-before2; n1 != 10 || n2 != 10 {
				return fmt.Errorf("v1 got %d requests, v2 %d copies; want 10 and 10", n1, n2)
			}
			return nil
		})
		// GET /mirror matches neither rule: the whole service answers.
		seen, err := count(c, url(toMir)+"mirror", 20, 1)
		if err != nil || seen["mir-v1"] == 0 || seen["mir-v2"] == 0 {
			t.Fatalf("GET /mirror: answers %v, %v", seen, err)
		}
	})

	t.Run("MeshLoadBalancingStrategy/LocalityAwareness", func(t *testing.T) {
		out := freePort(t)
		east := startDP(t, cp, "client-east", fmt.Sprintf(`type: Dataplane
mesh: default
name: client-east
networking:
  address: 127.0.0.1
  inbound:
  - port: %d
    servicePort: %d
    tags:
      kuma.io/service: client-east
      kuma.io/zone: east
  outbound:
  - port: %d
    tags:
      kuma.io/service: zoned
`, freePort(t), freePort(t), out))
		zoned := fmt.Sprintf("http://127.0.0.1:%d/", out)
		// No policy: both zones answer.
		within(t, cp, east.name, 10*time.Second, "both zones before the policy", func() error {
			seen, err := count(c, zoned, 20, 1)
			if err == nil && (seen["zoned-east"] == 0 || seen["zoned-west"] == 0) {
				err = fmt.Errorf("answers %v", seen)
			}
			return err
		})
		applyYAML(t, cp, `type: MeshLoadBalancingStrategy
name: zoned-local
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: zoned
    default:
      localityAwareness:
        disabled: false
`)
		within(t, cp, east.name, 15*time.Second, "traffic kept in the proxy's zone", func() error {
			seen, err := count(c, zoned, 30, 2)
			if err == nil && seen["zoned-east"] != 30 {
				err = fmt.Errorf("answers %v", seen)
			}
			return err
		})
		// The zone's only instance leaves: traffic fails over to the other zone.
		zonedDPs["east"].Stop()
		within(t, cp, east.name, 15*time.Second, "failover to the other zone", func() error {
			seen, err := count(c, zoned, 20, 1)
			if err == nil && seen["zoned-west"] != 20 {
				err = fmt.Errorf("answers %v", seen)
			}
			return err
		})
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
	noNacks(t, cp)
}
