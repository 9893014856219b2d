package runtime_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestHTTP1ThroughRDS(t *testing.T) {
	backend := idBackend(t, "b1")
	rt := newRuntime(t)
	addr := freeAddr(t)
	apply(t, rt, configOf(httpListener(t, addr, "web"), routeConfig("web", nil), edsCluster(t, "web", false), cla("web", backend)))

	req, _ := http.NewRequest("GET", "http://"+addr+"/a/b?q=1", nil)
	req.Host = "web.mesh"
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "secret")
	resp, err := h1Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "b1" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Seen-Host"); got != "web.mesh" {
		t.Errorf("upstream Host = %q, want web.mesh", got)
	}
	if got := resp.Header.Get("X-Seen-Path"); got != "/a/b?q=1" {
		t.Errorf("upstream path = %q", got)
	}
	if got := resp.Header.Get("X-Seen-Request-Id"); len(got) != 36 {
		t.Errorf("x-request-id = %q, want a generated UUID", got)
	}
	st := rt.Stats()
	for _, name := range []string{"http.web.downstream_rq_2xx", "cluster.web.upstream_rq_2xx", "cluster.web.upstream_rq_total", "http.web.downstream_rq_http1_total"} {
		if st[name] != 1 {
			t.Errorf("stat %s = %d, want 1", name, st[name])
		}
	}
}

func TestHopByHopHeadersNotForwarded(t *testing.T) {
	var seen http.Header
	backend := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "yes")
	}))
	rt := newRuntime(t)
	addr := freeAddr(t)
	apply(t, rt, configOf(httpListener(t, addr, "web"), routeConfig("web", nil), edsCluster(t, "web", false), cla("web", backend)))
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "1")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("X-Request-Id", "given-id")
	req.Header.Set("X-Forwarded-For", "10.0.0.1")
	resp, err := h1Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, h := range []string{"X-Hop", "Upgrade", "Connection"} {
		if v := seen.Get(h); v != "" {
			t.Errorf("upstream got %s: %q", h, v)
		}
	}
	if got := seen.Get("X-Request-Id"); got != "given-id" {
		t.Errorf("x-request-id = %q, want the client's", got)
	}
	if got := seen.Get("X-Forwarded-For"); got != "10.0.0.1" {
		t.Errorf("x-forwarded-for = %q, want it passed on", got)
	}
	if got := seen.Get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("x-forwarded-proto = %q", got)
	}
	if resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("X-Kept") != "yes" {
		t.Errorf("response headers = %v", resp.Header)
	}
}

func TestHTTP2DownstreamAndUpstream(t *testing.T) {
	h1 := idBackend(t, "h1")
	h2 := idBackend(t, "h2")
	rt := newRuntime(t)
	addr := freeAddr(t)
	addr2 := freeAddr(t)
	apply(t, rt, configOf(
		httpListener(t, addr, "web"), routeConfig("web", nil), edsCluster(t, "web", false), cla("web", h1),
		httpListener(t, addr2, "grpcish"), routeConfig("grpcish", nil), edsCluster(t, "grpcish", true), cla("grpcish", h2),
	))
	for _, tc := range []struct {
		name      string
		client    *http.Client
		addr      string
		wantProto string // upstream protocol
		wantDown  int
	}{
		{"h1 to h1", h1Client(t), addr, "1", 1},
		{"h2c to h1", h2cClient(t), addr, "1", 2},
		{"h1 to h2c", h1Client(t), addr2, "2", 1},
		{"h2c to h2c", h2cClient(t), addr2, "2", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, tc.client, "http://"+tc.addr+"/x")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d %q", resp.StatusCode, body)
			}
			if resp.ProtoMajor != tc.wantDown {
				t.Errorf("downstream protocol %d, want %d", resp.ProtoMajor, tc.wantDown)
			}
			if got := resp.Header.Get("X-Proto"); got != tc.wantProto {
				t.Errorf("upstream protocol %s, want %s", got, tc.wantProto)
			}
		})
	}
}

func TestStreamingAndTrailersHTTP2(t *testing.T) {
	backend := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Declared")
		w.WriteHeader(200)
		for i := range 3 {
			_, _ = io.WriteString(w, strings.Repeat(string(rune('a'+i)), 10))
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Declared", "d")
		w.Header().Set(http.TrailerPrefix+"X-Undeclared", "u")
	}))
	rt := newRuntime(t)
	addr := freeAddr(t)
	apply(t, rt, configOf(httpListener(t, addr, "s"), routeConfig("s", nil), edsCluster(t, "s", true), cla("s", backend)))
	resp, body := get(t, h2cClient(t), "http://"+addr+"/")
	if body != strings.Repeat("a", 10)+strings.Repeat("b", 10)+strings.Repeat("c", 10) {
		t.Fatalf("body %q", body)
	}
	if resp.Trailer.Get("X-Declared") != "d" || resp.Trailer.Get("X-Undeclared") != "u" {
		t.Fatalf("trailers = %v", resp.Trailer)
	}
}

func TestRequestBodyStreamsUpstream(t *testing.T) {
	backend := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, strings.Repeat("z", int(n)))
	}))
	rt := newRuntime(t)
	h1Addr, h2Addr := freeAddr(t), freeAddr(t)
	apply(t, rt, configOf(
		httpListener(t, h1Addr, "s1"), routeConfig("s1", nil), edsCluster(t, "s1", false), cla("s1", backend),
		httpListener(t, h2Addr, "s2"), routeConfig("s2", nil), edsCluster(t, "s2", true), cla("s2", backend)))
	const size = 3 << 20
	for _, addr := range []string{h1Addr, h2Addr} {
		for _, c := range []*http.Client{h1Client(t), h2cClient(t)} {
			for _, chunked := range []bool{false, true} {
				var body io.Reader = strings.NewReader(strings.Repeat("y", size))
				if chunked {
					body = io.MultiReader(body) // hides the length
				}
				resp, err := c.Post("http://"+addr+"/", "application/octet-stream", body)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || len(b) != size {
					t.Fatalf("%s chunked=%v: status %d, echoed %d bytes", addr, chunked, resp.StatusCode, len(b))
				}
			}
		}
	}
}

func TestRoundRobinOverThreeEndpoints(t *testing.T) {
	a, b, c := idBackend(t, "a"), idBackend(t, "b"), idBackend(t, "c")
	rt := newRuntime(t)
	addr := freeAddr(t)
	apply(t, rt, configOf(httpListener(t, addr, "web"), routeConfig("web", nil), edsCluster(t, "web", false), cla("web", a, b, c)))
	client := h1Client(t)
	hits := map[string]int{}
	for range 30 {
		_, body := get(t, client, "http://"+addr+"/")
		hits[body]++
	}
	if hits["a"] != 10 || hits["b"] != 10 || hits["c"] != 10 {
		t.Fatalf("hits = %v, want 10 each", hits)
	}
}

func TestWeightedEndpoints(t *testing.T) {
	a, b := idBackend(t, "a"), idBackend(t, "b")
	rt := newRuntime(t)
	addr := freeAddr(t)
	apply(t, rt, configOf(httpListener(t, addr, "web"), routeConfig("web", nil), edsCluster(t, "web", false),
		claWith("web", lbEndpoint{addr: a, weight: 3}, lbEndpoint{addr: b, weight: 1})))
	client := h1Client(t)
	hits := map[string]int{}
	for range 40 {
		_, body := get(t, client, "http://"+addr+"/")
		hits[body]++
	}
	if hits["a"] != 30 || hits["b"] != 10 {
		t.Fatalf("hits = %v, want a:30 b:10", hits)
	}
}

func TestEndpointChangesTakeEffect(t *testing.T) {
	a, b, c := idBackend(t, "a"), idBackend(t, "b"), idBackend(t, "c")
	rt := newRuntime(t)
	addr := freeAddr(t)
	base := configOf(httpListener(t, addr, "web"), routeConfig("web", nil), edsCluster(t, "web", false), cla("web", a, b, c))
	apply(t, rt, base)
	client := h1Client(t)
	get(t, client, "http://"+addr+"/") // warm a pooled connection

	// Remove c, mark b unhealthy: only a gets traffic.
	next := base.Clone()
	next.Endpoints["web"] = claWith("web",
		lbEndpoint{addr: a, health: 1 /* HEALTHY */},
		lbEndpoint{addr: b, health: 2 /* UNHEALTHY */})
	apply(t, rt, next)
	for range 10 {
		if _, body := get(t, client, "http://"+addr+"/"); body != "a" {
			t.Fatalf("got %q after the update, want only a", body)
		}
	}
	if got := rt.Stats()["cluster.web.membership_healthy"]; got != 1 {
		t.Errorf("membership_healthy = %d, want 1", got)
	}
}

func TestNoHealthyEndpoints(t *testing.T) {
	rt := newRuntime(t)
	addr := freeAddr(t)
	apply(t, rt, configOf(httpListener(t, addr, "web"), routeConfig("web", nil), edsCluster(t, "web", false),
		claWith("web", lbEndpoint{addr: "127.0.0.1:1", health: 2 /* UNHEALTHY */})))
	resp, body := get(t, h1Client(t), "http://"+addr+"/")
	if resp.StatusCode != 503 || body != "no healthy upstream" {
		t.Fatalf("got %d %q, want 503 no healthy upstream", resp.StatusCode, body)
	}
	if got := rt.Stats()["cluster.web.upstream_cx_none_healthy"]; got != 1 {
		t.Errorf("upstream_cx_none_healthy = %d", got)
	}

	// A cluster that has not arrived yet (no CDS/EDS) also gives 503.
	addr2 := freeAddr(t)
	apply(t, rt, configOf(httpListener(t, addr2, "later"), routeConfig("later", nil)))
	if resp, _ := get(t, h1Client(t), "http://"+addr2+"/"); resp.StatusCode != 503 {
		t.Fatalf("missing cluster: got %d, want 503", resp.StatusCode)
	}
}

func TestUpstreamConnectFailure(t *testing.T) {
	rt := newRuntime(t)
	addr := freeAddr(t)
	apply(t, rt, configOf(httpListener(t, addr, "web"), routeConfig("web", nil), edsCluster(t, "web", false), cla("web", freeAddr(t))))
	resp, body := get(t, h1Client(t), "http://"+addr+"/")
	if resp.StatusCode != 503 || !strings.Contains(body, "connection failure") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestRouteTimeout(t *testing.T) {
	backend := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	rt := newRuntime(t)
	addr := freeAddr(t)
	apply(t, rt, configOf(httpListener(t, addr, "slow"), routeConfig("slow", durationpb.New(100*time.Millisecond)),
		edsCluster(t, "slow", false), cla("slow", backend)))
	start := time.Now()
	resp, body := get(t, h1Client(t), "http://"+addr+"/")
	if resp.StatusCode != 504 || body != "upstream request timeout" {
		t.Fatalf("got %d %q, want 504", resp.StatusCode, body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
	if got := rt.Stats()["cluster.slow.upstream_rq_timeout"]; got != 1 {
		t.Errorf("upstream_rq_timeout = %d", got)
	}
}

func TestWeightedClustersRoute(t *testing.T) {
	a, b := idBackend(t, "a"), idBackend(t, "b")
	rt := newRuntime(t)
	addr := freeAddr(t)
	rc := routeConfig("web", nil)
	rc.VirtualHosts[0].Routes[0].GetRoute().ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
		Clusters: []*routev3.WeightedCluster_ClusterWeight{
			{Name: "a", Weight: wrapperspb.UInt32(0)},
			{Name: "b", Weight: wrapperspb.UInt32(100)},
		},
	}}
	apply(t, rt, configOf(httpListener(t, addr, "web"), rc,
		edsCluster(t, "a", false), cla("a", a), edsCluster(t, "b", false), cla("b", b)))
	client := h1Client(t)
	for range 10 {
		if _, body := get(t, client, "http://"+addr+"/"); body != "b" {
			t.Fatalf("got %q, want only b (a has weight 0)", body)
		}
	}
}

func TestConnectionGaugesReturnToZero(t *testing.T) {
	backend := idBackend(t, "a")
	rt := newRuntime(t)
	addr := freeAddr(t)
	apply(t, rt, configOf(httpListener(t, addr, "web"), routeConfig("web", nil), edsCluster(t, "web", false), cla("web", backend)))
	h1, h2 := h1Client(t), h2cClient(t)
	get(t, h1, "http://"+addr+"/")
	get(t, h2, "http://"+addr+"/")
	active := "listener." + strings.ReplaceAll(addr, ":", "_") + ".downstream_cx_active"
	if got := rt.Stats()[active]; got != 2 {
		t.Fatalf("%s = %d, want 2", active, got)
	}
	h1.Transport.(*http.Transport).CloseIdleConnections()
	h2.Transport.(*http.Transport).CloseIdleConnections()
	deadline := time.Now().Add(3 * time.Second)
	for {
		st := rt.Stats()
		if st[active] == 0 && st["http.web.downstream_cx_active"] == 0 {
			if st["http.web.downstream_cx_total"] != 2 || st["listener."+strings.ReplaceAll(addr, ":", "_")+".downstream_cx_destroy"] != 2 {
				t.Fatalf("stats = %v", st)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d, http.web.downstream_cx_active = %d after the clients closed", active, st[active], st["http.web.downstream_cx_active"])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
