package httpproxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/cluster"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

func noClusters(string) *cluster.Cluster { return nil }

// direct is a route answering 200 with body.
func direct(match *routev3.RouteMatch, body string) *routev3.Route {
	return &routev3.Route{Match: match, Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
		Status: 200, Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: body}},
	}}}
}

func prefix(p string) *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: p}}
}

func vhost(name string, domains ...string) *routev3.VirtualHost {
	return &routev3.VirtualHost{Name: name, Domains: domains, Routes: []*routev3.Route{direct(prefix("/"), name)}}
}

func serve(t *testing.T, h *Handler, r *http.Request) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Result()
}

func handlerFor(t *testing.T, rc *routev3.RouteConfiguration) *Handler {
	t.Helper()
	rt, err := CompileRouteConfiguration(rc, noClusters)
	if err != nil {
		t.Fatal(err)
	}
	return &Handler{statPrefix: "t", routes: rt, log: slog.New(slog.DiscardHandler), stats: newHTTPStats(stats.NewStore(), "t")}
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestVirtualHostSelection(t *testing.T) {
	h := handlerFor(t, &routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{
		vhost("exact", "api.example.com", "api.example.com:8080"),
		vhost("suffix", "*.example.com"),
		vhost("longer-suffix", "*.eu.example.com"),
		vhost("prefix", "api.*"),
		vhost("default", "*"),
	}})
	for host, want := range map[string]string{
		"api.example.com":      "exact",
		"API.Example.com":      "exact",
		"api.example.com:8080": "exact",
		"www.example.com":      "suffix",
		"a.eu.example.com":     "longer-suffix",
		"example.com":          "default", // the wildcard needs at least one character
		"api.internal":         "prefix",
		"other":                "default",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = host
		if got := body(t, serve(t, h, r)); got != want {
			t.Errorf("Host %q: virtual host %q, want %q", host, got, want)
		}
	}
}

func TestNoVirtualHostIs404(t *testing.T) {
	h := handlerFor(t, &routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{vhost("only", "only.example")}})
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = "else"
	if resp := serve(t, h, r); resp.StatusCode != 404 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if h.stats.noRoute.Value() != 1 {
		t.Fatal("no_route not counted")
	}
}

func TestRouteMatching(t *testing.T) {
	strMatch := func(name string, sm *matcherv3.StringMatcher) *routev3.HeaderMatcher {
		return &routev3.HeaderMatcher{Name: name, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sm}}
	}
	withHeaders := func(m *routev3.RouteMatch, hs ...*routev3.HeaderMatcher) *routev3.RouteMatch {
		m.Headers = hs
		return m
	}
	h := handlerFor(t, &routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{{
		Name: "v", Domains: []string{"*"}, Routes: []*routev3.Route{
			direct(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/exact"}}, "path"),
			direct(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: `/items/[0-9]+`}}}, "regex"),
			direct(withHeaders(prefix("/api"), strMatch("x-version", &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "V2"}, IgnoreCase: true})), "api-v2"),
			direct(withHeaders(prefix("/api"), &routev3.HeaderMatcher{Name: "x-canary", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}}), "api-canary"),
			direct(withHeaders(prefix("/api"), strMatch(":method", &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "POST"}})), "api-post"),
			direct(withHeaders(prefix("/api"), &routev3.HeaderMatcher{Name: "x-debug", InvertMatch: true, HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}}), "api-no-debug"),
			direct(prefix("/"), "fallback"),
		},
	}}})
	for _, tc := range []struct {
		method, target string
		header         map[string]string
		want           string
	}{
		{"GET", "/exact", nil, "path"},
		{"GET", "/exact?q=1", nil, "path"},
		{"GET", "/exact/more", nil, "fallback"},
		{"GET", "/items/42", nil, "regex"},
		{"GET", "/items/42?x", nil, "regex"},
		{"GET", "/items/4x", nil, "fallback"},
		{"GET", "/api/x", map[string]string{"X-Version": "v2"}, "api-v2"},
		{"GET", "/api/x", map[string]string{"X-Canary": ""}, "api-canary"},
		{"POST", "/api/x", nil, "api-post"},
		{"GET", "/api/x", nil, "api-no-debug"},
		{"GET", "/api/x", map[string]string{"X-Debug": "1"}, "fallback"},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		for k, v := range tc.header {
			r.Header.Set(k, v)
		}
		if got := body(t, serve(t, h, r)); got != tc.want {
			t.Errorf("%s %s %v: route %q, want %q", tc.method, tc.target, tc.header, got, tc.want)
		}
	}
}

func TestRedirect(t *testing.T) {
	redirect := func(m *routev3.RouteMatch, a *routev3.RedirectAction) *routev3.Route {
		return &routev3.Route{Match: m, Action: &routev3.Route_Redirect{Redirect: a}}
	}
	h := handlerFor(t, &routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{{
		Name: "v", Domains: []string{"*"}, Routes: []*routev3.Route{
			redirect(prefix("/secure"), &routev3.RedirectAction{SchemeRewriteSpecifier: &routev3.RedirectAction_HttpsRedirect{HttpsRedirect: true}}),
			redirect(prefix("/old/"), &routev3.RedirectAction{
				PathRewriteSpecifier: &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: "/new/"},
				ResponseCode:         routev3.RedirectAction_FOUND,
			}),
			redirect(prefix("/moved"), &routev3.RedirectAction{
				HostRedirect: "other.example", PortRedirect: 8443,
				PathRewriteSpecifier: &routev3.RedirectAction_PathRedirect{PathRedirect: "/here"},
				StripQuery:           true, ResponseCode: routev3.RedirectAction_PERMANENT_REDIRECT,
			}),
		},
	}}})
	for _, tc := range []struct {
		host, target string
		status       int
		location     string
	}{
		{"web:80", "/secure/x?a=1", 301, "https://web/secure/x?a=1"},
		{"web:8080", "/secure", 301, "https://web:8080/secure"},
		{"web", "/old/page?q", 302, "http://web/new/page?q"},
		{"web", "/moved?x=1", 308, "http://other.example:8443/here"},
	} {
		r := httptest.NewRequest("GET", tc.target, nil)
		r.Host = tc.host
		resp := serve(t, h, r)
		if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location {
			t.Errorf("%s%s: %d %q, want %d %q", tc.host, tc.target, resp.StatusCode, resp.Header.Get("Location"), tc.status, tc.location)
		}
	}
}

func TestDirectResponse(t *testing.T) {
	h := handlerFor(t, &routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{{
		Name: "v", Domains: []string{"*"}, Routes: []*routev3.Route{{
			Match: prefix("/"),
			Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
				Status: 418, Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: []byte("teapot")}},
			}},
		}},
	}}})
	resp := serve(t, h, httptest.NewRequest("GET", "/", nil))
	if resp.StatusCode != 418 || body(t, resp) != "teapot" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("got %d %q %v", resp.StatusCode, body(t, resp), resp.Header)
	}
	if h.stats.rqDirectResponse.Value() != 1 || h.stats.rqClass[4].Value() != 1 {
		t.Fatal("stats not counted")
	}
}

func TestRequestID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newRequestID()
		if len(id) != 36 || id[14] != '4' || id[8] != '-' || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}
