package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testApp is the application behind a sidecar in the policy tests: an
// HTTP/1.1 server on 127.0.0.1 whose behaviour the test changes while it
// runs.
//
//   - GET /health answers 200 while healthy, 503 otherwise (setHealthy).
//   - Every other request is counted; with setFailures(n, m) the first n of
//     every m of them answer 500. ?delay=<duration> holds the answer that
//     long (or until the client goes away).
//   - Answers are JSON: the instance, the path and the request headers;
//     the X-Instance response header names the instance too.
type testApp struct {
	instance string
	port     int
	srv      *http.Server
	healthy  atomic.Bool
	// failN and failM: the first failN of every failM requests fail.
	failN, failM atomic.Int64
	requests     atomic.Int64
	healthChecks atomic.Int64
}

// appAnswer is the JSON a testApp answers with.
type appAnswer struct {
	Instance string              `json:"instance"`
	Host     string              `json:"host"`
	Path     string              `json:"path"`
	Headers  map[string][]string `json:"headers"`
}

func startTestApp(t *testing.T, instance string) *testApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := &testApp{instance: instance, port: ln.Addr().(*net.TCPAddr).Port}
	app.healthy.Store(true)
	app.srv = &http.Server{Handler: http.HandlerFunc(app.serve), ReadHeaderTimeout: 10 * time.Second}
	go app.srv.Serve(ln)
	t.Cleanup(func() { app.srv.Close() })
	return app
}

func (a *testApp) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Instance", a.instance)
	if r.URL.Path == "/health" {
		a.healthChecks.Add(1)
		if !a.healthy.Load() {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
		return
	}
	n := a.requests.Add(1)
	if d, err := time.ParseDuration(r.URL.Query().Get("delay")); err == nil && d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	status := http.StatusOK
	if fn, fm := a.failN.Load(), a.failM.Load(); fm > 0 && (n-1)%fm < fn {
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(appAnswer{Instance: a.instance, Host: r.Host, Path: r.URL.Path, Headers: r.Header})
}

// setHealthy flips what /health answers.
func (a *testApp) setHealthy(ok bool) { a.healthy.Store(ok) }

// setFailures makes the first n of every m requests from now on answer
// 500 (m = 0: none fail).
func (a *testApp) setFailures(n, m int64) {
	a.failM.Store(0)
	a.requests.Store(0)
	a.failN.Store(n)
	a.failM.Store(m)
}

// taggedDP returns the Dataplane of one instance of service (protocol)
// whose app listens on appPort, with extra inbound tags.
func taggedDP(t *testing.T, name, service, protocol string, appPort int, tags map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "type: Dataplane\nmesh: default\nname: %s\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - port: %d\n    servicePort: %d\n    tags:\n      kuma.io/service: %s\n      kuma.io/protocol: %s\n",
		name, freePort(t), appPort, service, protocol)
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		fmt.Fprintf(&b, "      %s: %s\n", k, tags[k])
	}
	return b.String()
}

// applyYAML applies resources with trellisctl.
func applyYAML(t *testing.T, cp *controlPlane, yaml string) {
	t.Helper()
	cp.mustCtl(yaml, "apply", "-f", "-")
}

// answer is one HTTP exchange as the test saw it.
type answer struct {
	status   int
	instance string // X-Instance of the app, "" when a proxy answered
	header   http.Header
	body     string
	took     time.Duration
}

// request sends one request with extra headers (pairs of name, value).
func request(c *http.Client, method, url string, headers ...string) (answer, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return answer{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return answer{took: time.Since(start)}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, instance: resp.Header.Get("X-Instance"), header: resp.Header, body: string(body), took: time.Since(start)}
	return a, err
}

// count sends n requests (workers at a time) and counts the answering
// instances; any answer other than 200 is an error.
func count(c *http.Client, url string, n, workers int, headers ...string) (map[string]int, error) {
	type result struct {
		inst string
		err  error
	}
	jobs := make(chan struct{})
	results := make(chan result)
	for range workers {
		go func() {
			for range jobs {
				a, err := request(c, http.MethodGet, url, headers...)
				if err == nil && a.status != http.StatusOK {
					err = fmt.Errorf("status %d: %s", a.status, a.body)
				}
				results <- result{a.instance, err}
			}
		}()
	}
	go func() {
		for range n {
			jobs <- struct{}{}
		}
		close(jobs)
	}()
	seen := map[string]int{}
	var firstErr error
	for range n {
		r := <-results
		if r.err != nil {
			firstErr = cmpErr(firstErr, r.err)
			continue
		}
		seen[r.inst]++
	}
	return seen, firstErr
}

func cmpErr(old, err error) error {
	if old != nil {
		return old
	}
	return err
}

// configDump fetches a proxy's /config_dump as plain JSON.
func configDump(t *testing.T, p *proxy) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + p.admin + "/config_dump")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("config dump of %s: %v", p.name, err)
	}
	return v
}

// dumpResource finds a resource by name in a config dump: kind is
// "cluster", "listener" or "route_config".
func dumpResource(dump map[string]any, kind, name string) map[string]any {
	configs, _ := dump["configs"].([]any)
	for _, c := range configs {
		part, _ := c.(map[string]any)
		var items []any
		switch kind {
		case "cluster":
			items, _ = part["dynamic_active_clusters"].([]any)
		case "listener":
			items, _ = part["dynamic_listeners"].([]any)
		case "route_config":
			items, _ = part["dynamic_route_configs"].([]any)
		}
		for _, it := range items {
			m, _ := it.(map[string]any)
			var res map[string]any
			if kind == "listener" {
				res, _ = dig(m, "active_state", "listener").(map[string]any)
			} else {
				res, _ = m[kind].(map[string]any)
			}
			if res != nil && res["name"] == name {
				return res
			}
		}
	}
	return nil
}

// dig walks JSON by object keys (string) and array indexes (int); nil
// when a step is missing.
func dig(v any, path ...any) any {
	for _, step := range path {
		switch s := step.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[s]
		case int:
			a, ok := v.([]any)
			if !ok || s >= len(a) {
				return nil
			}
			v = a[s]
		}
	}
	return v
}

// lastNack returns the proxy's last NACK as the API shows it ("" if none),
// to explain a policy that has no effect.
func lastNack(t *testing.T, cp *controlPlane, name string) string {
	t.Helper()
	s := lastSubscription(overview(t, cp, name))
	if msg, _ := dig(s, "status", "lastNack", "error").(string); msg != "" {
		return "; the proxy NACKed: " + msg
	}
	return ""
}

// within retries cond every 100 ms until it holds or the time is up; the
// failure message names the proxy's last NACK, if any.
func within(t *testing.T, cp *controlPlane, dp string, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v%s", what, d, err, lastNack(t, cp, dp))
}

// noNacks fails the test if any proxy of the default mesh has NACKed a
// configuration: every policy the test applied must be one trellis-dp
// runs.
func noNacks(t *testing.T, cp *controlPlane) {
	t.Helper()
	resp, err := http.Get(cp.URL + "/meshes/default/dataplanes?size=100")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) == 0 {
		t.Fatal("no dataplanes listed")
	}
	for _, dp := range page.Items {
		if nack := lastNack(t, cp, dp.Name); nack != "" {
			t.Errorf("%s%s", dp.Name, nack)
		}
	}
}
