package runtime_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

func forwardTo(cluster string) *routev3.Route_Route {
	return &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster}}}
}

// routingConfig is an outbound HTTP listener on addr whose route
// configuration has the given routes, with idBackend clusters a, b, c.
func routingConfig(t *testing.T, addr string, routes ...*routev3.Route) []proto.Message {
	t.Helper()
	rc := &routev3.RouteConfiguration{Name: "outbound:web", VirtualHosts: []*routev3.VirtualHost{{
		Name: "web", Domains: []string{"*"}, Routes: routes,
	}}}
	out := []proto.Message{httpListener(t, addr, "web"), rc}
	for _, id := range []string{"a", "b", "c"} {
		out = append(out, edsCluster(t, id, false), cla(id, idBackend(t, id)))
	}
	return out
}

// clients are the two downstream paths: HTTP/1.1 (the fast path) and
// h2c (net/http).
func clients(t *testing.T) map[string]*http.Client {
	return map[string]*http.Client{"h1": h1Client(t), "h2c": h2cClient(t)}
}

func do(t *testing.T, c *http.Client, method, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestRouteHeaderAndQueryMatch(t *testing.T) {
	byHeader := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}, Headers: []*routev3.HeaderMatcher{{
		Name: "x-version", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "v2"}}},
	}}}
	byQuery := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/shop"},
		QueryParameters: []*routev3.QueryParameterMatcher{{
			Name: "canary", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true},
		}}}
	rt := newRuntime(t)
	addr := freeAddr(t)
	apply(t, rt, configOf(routingConfig(t, addr,
		&routev3.Route{Match: byHeader, Action: forwardTo("b")},
		&routev3.Route{Match: byQuery, Action: forwardTo("c")},
		&routev3.Route{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}, Action: forwardTo("a")},
	)...))
	for name, c := range clients(t) {
		for _, tc := range []struct {
			path, version, want string
		}{
			{"/", "", "a"},
			{"/", "v2", "b"},
			{"/", "v3", "a"},
			{"/shop?canary", "", "c"},
			{"/shop/cart?x=1&canary=yes", "", "c"},
			{"/shop?canary", "v2", "b"}, // the first matching route wins
			{"/shopping?canary", "", "a"},
			{"/shop?x=1", "", "a"},
		} {
			var hdr []string
			if tc.version != "" {
				hdr = []string{"X-Version", tc.version}
			}
			if _, got := do(t, c, "GET", "http://"+addr+tc.path, hdr...); got != tc.want {
				t.Errorf("%s: %s (x-version %q): backend %q, want %q", name, tc.path, tc.version, got, tc.want)
			}
		}
	}
}

// headerEcho answers with the request's headers as "Name: v1,v2" lines,
// its host and path, and sets the response headers X-Up and X-Secret.
func headerEcho(t *testing.T) string {
	return httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Up", "up")
		w.Header().Set("X-Secret", "s")
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Seen-Path", r.URL.RequestURI())
		for _, k := range []string{"X-Added", "X-Appended", "X-Removed", "X-Overwritten", "X-Vh", "X-Request-Id"} {
			fmt.Fprintf(w, "%s: %s\n", k, strings.Join(r.Header.Values(k), ","))
		}
	}))
}

func hvo(key, value string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, Value: value}, AppendAction: action}
}

func TestRouteHeaderEditsAndRewrites(t *testing.T) {
	rt := newRuntime(t)
	addr := freeAddr(t)
	route := &routev3.Route{
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/api"}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier:     &routev3.RouteAction_Cluster{Cluster: "echo"},
			PrefixRewrite:        "/v2",
			HostRewriteSpecifier: &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: "echo.internal"},
		}},
		RequestHeadersToAdd: []*corev3.HeaderValueOption{
			hvo("x-added", "yes", corev3.HeaderValueOption_ADD_IF_ABSENT),
			hvo("x-appended", "route", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
			hvo("x-overwritten", "route", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
		},
		RequestHeadersToRemove:  []string{"x-removed", "x-request-id"},
		ResponseHeadersToAdd:    []*corev3.HeaderValueOption{hvo("x-down", "added", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)},
		ResponseHeadersToRemove: []string{"x-secret"},
	}
	regexRoute := &routev3.Route{
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/svc/"}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "echo"},
			RegexRewrite: &matcherv3.RegexMatchAndSubstitute{
				Pattern: &matcherv3.RegexMatcher{Regex: "^/svc/([^/]+)/(.*)$"}, Substitution: `/\2?from=\1`},
		}},
	}
	rc := &routev3.RouteConfiguration{Name: "outbound:web", VirtualHosts: []*routev3.VirtualHost{{
		Name: "web", Domains: []string{"*"}, Routes: []*routev3.Route{route, regexRoute},
		RequestHeadersToAdd: []*corev3.HeaderValueOption{hvo("x-vh", "vh", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)},
	}}}
	apply(t, rt, configOf(httpListener(t, addr, "web"), rc, edsCluster(t, "echo", false), cla("echo", headerEcho(t))))

	for name, c := range clients(t) {
		resp, body := do(t, c, "GET", "http://"+addr+"/api/users?q=1",
			"X-Added", "client", "X-Appended", "client", "X-Removed", "r", "X-Overwritten", "client", "X-Request-Id", "rid")
		want := "X-Added: client\nX-Appended: client,route\nX-Removed: \nX-Overwritten: route\nX-Vh: vh\nX-Request-Id: \n"
		if body != want {
			t.Errorf("%s: upstream saw\n%s\nwant\n%s", name, body, want)
		}
		if got := resp.Header.Get("X-Seen-Path"); got != "/v2/users?q=1" {
			t.Errorf("%s: upstream path %q, want /v2/users?q=1", name, got)
		}
		if got := resp.Header.Get("X-Seen-Host"); got != "echo.internal" {
			t.Errorf("%s: upstream host %q, want echo.internal", name, got)
		}
		if resp.Header.Get("X-Down") != "added" || resp.Header.Get("X-Up") != "up" || resp.Header.Get("X-Secret") != "" {
			t.Errorf("%s: response headers %v", name, resp.Header)
		}
		resp, _ = do(t, c, "GET", "http://"+addr+"/svc/orders/list/all")
		if got := resp.Header.Get("X-Seen-Path"); got != "/list/all?from=orders" {
			t.Errorf("%s: regex rewrite: upstream path %q", name, got)
		}
	}
}

func TestRouteMirror(t *testing.T) {
	type seen struct{ host, path, body string }
	mirrored := make(chan seen, 16)
	mirror := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mirrored <- seen{r.Host, r.URL.RequestURI(), string(b)}
		w.WriteHeader(http.StatusInternalServerError) // dropped
	}))
	main := httpBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "main got %s", b)
	}))
	rt := newRuntime(t)
	addr := freeAddr(t)
	rc := routeConfig("main", nil)
	action := rc.VirtualHosts[0].Routes[0].GetRoute()
	action.RequestMirrorPolicies = []*routev3.RouteAction_RequestMirrorPolicy{
		{Cluster: "mirror"},
		{Cluster: "dead"}, // never answers: the main request does not care
		{Cluster: "never", RuntimeFraction: &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 0}}},
	}
	lst := httpListener(t, addr, "main")
	lst.Name = "outbound:main"
	apply(t, rt, configOf(lst, rc,
		edsCluster(t, "main", false), cla("main", main),
		edsCluster(t, "mirror", false), cla("mirror", mirror),
		edsCluster(t, "dead", false), cla("dead", freeAddr(t)),
		edsCluster(t, "never", false), cla("never", mirror),
	))
	for name, c := range clients(t) {
		resp, err := c.Post("http://"+addr+"/orders?id=3", "text/plain", strings.NewReader("payload-"+name))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "main got payload-"+name {
			t.Fatalf("%s: main response %d %q", name, resp.StatusCode, b)
		}
		select {
		case s := <-mirrored:
			if !strings.HasSuffix(s.host, "-shadow:"+strings.Split(addr, ":")[1]) && !strings.HasSuffix(s.host, "-shadow") {
				t.Errorf("%s: mirror host %q has no -shadow suffix", name, s.host)
			}
			if s.path != "/orders?id=3" || s.body != "payload-"+name {
				t.Errorf("%s: mirror saw %+v", name, s)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the mirror got nothing", name)
		}
	}
	select {
	case s := <-mirrored:
		t.Errorf("an extra mirrored request (the 0%% policy?): %+v", s)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestRouteHashPolicy: with a RING_HASH cluster, requests with the same
// header value reach the same endpoint on both paths.
func TestRouteHashPolicy(t *testing.T) {
	rt := newRuntime(t)
	addr := freeAddr(t)
	rc := routeConfig("ring", nil)
	rc.VirtualHosts[0].Routes[0].GetRoute().HashPolicy = []*routev3.RouteAction_HashPolicy{{
		PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: "x-user"}},
	}}
	cl := edsCluster(t, "ring", false)
	cl.LbPolicy = clusterv3.Cluster_RING_HASH
	lst := httpListener(t, addr, "ring")
	apply(t, rt, configOf(lst, rc, cl, cla("ring", idBackend(t, "a"), idBackend(t, "b"), idBackend(t, "c"), idBackend(t, "d"))))
	seenBy := map[string]string{}
	backends := map[string]bool{}
	for name, c := range clients(t) {
		for i := range 24 {
			user := fmt.Sprintf("user-%d", i%8)
			_, got := do(t, c, "GET", "http://"+addr+"/", "X-User", user)
			if prev, ok := seenBy[user]; ok && prev != got {
				t.Errorf("%s: %s went to %s, earlier to %s", name, user, got, prev)
			}
			seenBy[user] = got
			backends[got] = true
		}
	}
	if len(backends) < 2 {
		t.Errorf("8 users all went to %v", backends)
	}
}

// TestRouteHashCookieGenerated: a cookie hash policy with a ttl sets the
// cookie on a request without it, and requests carrying that cookie reach
// the endpoint the first one did.
func TestRouteHashCookieGenerated(t *testing.T) {
	rt := newRuntime(t)
	addr := freeAddr(t)
	rc := routeConfig("ring", nil)
	rc.VirtualHosts[0].Routes[0].GetRoute().HashPolicy = []*routev3.RouteAction_HashPolicy{{
		PolicySpecifier: &routev3.RouteAction_HashPolicy_Cookie_{Cookie: &routev3.RouteAction_HashPolicy_Cookie{
			Name: "sticky", Ttl: durationpb.New(time.Hour), Path: "/"}},
	}}
	cl := edsCluster(t, "ring", false)
	cl.LbPolicy = clusterv3.Cluster_RING_HASH
	apply(t, rt, configOf(httpListener(t, addr, "ring"), rc, cl,
		cla("ring", idBackend(t, "a"), idBackend(t, "b"), idBackend(t, "c"), idBackend(t, "d"))))
	for name, c := range clients(t) {
		resp, first := do(t, c, "GET", "http://"+addr+"/")
		sc := resp.Header.Get("Set-Cookie")
		if !strings.HasPrefix(sc, `sticky="`) || !strings.Contains(sc, "; Max-Age=3600; Path=/; HttpOnly") {
			t.Fatalf("%s: Set-Cookie %q", name, sc)
		}
		value := strings.Trim(strings.TrimPrefix(strings.Split(sc, ";")[0], "sticky="), `"`)
		for range 10 {
			resp, got := do(t, c, "GET", "http://"+addr+"/", "Cookie", "sticky="+value)
			if got != first {
				t.Fatalf("%s: with the cookie: endpoint %s, first request %s", name, got, first)
			}
			if resp.Header.Get("Set-Cookie") != "" {
				t.Fatalf("%s: a request with the cookie got Set-Cookie %q", name, resp.Header.Get("Set-Cookie"))
			}
		}
	}
}
