package httpproxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func exactStr(v string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}
}

func TestQueryAndSeparatedPrefixMatch(t *testing.T) {
	sep := func(p string) *routev3.RouteMatch {
		return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: p}}
	}
	withQuery := prefix("/")
	withQuery.QueryParameters = []*routev3.QueryParameterMatcher{
		{Name: "v", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{StringMatch: exactStr("a b")}},
		{Name: "debug", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}},
	}
	h := handlerFor(t, &routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{{
		Name: "vh", Domains: []string{"*"}, Routes: []*routev3.Route{
			direct(withQuery, "query"),
			direct(sep("/api"), "api"),
			direct(prefix("/"), "default"),
		},
	}}})
	for path, want := range map[string]string{
		"/x?v=a+b&debug":      "query",
		"/x?debug=1&v=a%20b":  "query",
		"/x?v=a+b":            "default", // debug absent
		"/x?v=ab&debug":       "default",
		"/x?v=a+b&v=c&debug=": "query", // the first value counts
		"/api":                "api",
		"/api/users":          "api",
		"/api?x=1":            "api",
		"/apis":               "default",
		"/api2/x":             "default",
	} {
		if got := body(t, serve(t, h, httptest.NewRequest("GET", path, nil))); got != want {
			t.Errorf("%s: route %q, want %q", path, got, want)
		}
	}
}

func TestPathRewrite(t *testing.T) {
	for _, tc := range []struct {
		match  *routev3.RouteMatch
		action *routev3.RouteAction
		in     string
		want   string
	}{
		{prefix("/api/"), &routev3.RouteAction{PrefixRewrite: "/v2/"}, "/api/users?x=1", "/v2/users?x=1"},
		{&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/api"}},
			&routev3.RouteAction{PrefixRewrite: "/"}, "/api/users", "//users"},
		{&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/old"}},
			&routev3.RouteAction{PrefixRewrite: "/new"}, "/old?q", "/new?q"},
		{prefix("/"), &routev3.RouteAction{RegexRewrite: &matcherv3.RegexMatchAndSubstitute{
			Pattern: &matcherv3.RegexMatcher{Regex: "^/svc/([^/]+)/(.*)$"}, Substitution: `/\2/by/\1$`}},
			"/svc/a/b/c?x=/svc/", "/b/c/by/a$?x=/svc/"},
		{prefix("/"), &routev3.RouteAction{RegexRewrite: &matcherv3.RegexMatchAndSubstitute{
			Pattern: &matcherv3.RegexMatcher{Regex: "o"}, Substitution: "0"}}, "/foo/boo", "/f00/b00"},
	} {
		m, err := compileRouteMatch(tc.match)
		if err != nil {
			t.Fatal(err)
		}
		p, err := compilePathRewrite(tc.action, &m)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.apply(tc.in); got != tc.want {
			t.Errorf("%v on %s: %s, want %s", tc.action, tc.in, got, tc.want)
		}
	}
}

func TestShadowHost(t *testing.T) {
	for in, want := range map[string]string{
		"web":        "web-shadow",
		"web:8080":   "web-shadow:8080",
		"[::1]:80":   "[::1]-shadow:80",
		"[::1]":      "[::1]-shadow",
		"a.b.svc:80": "a.b.svc-shadow:80",
	} {
		if got := shadowHost(in); got != want {
			t.Errorf("shadowHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func hv(key, value string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, Value: value}, AppendAction: action}
}

func TestHeaderModsBothForms(t *testing.T) {
	route, err := compileHeaderMods([]*corev3.HeaderValueOption{
		hv("x-append", "2", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
		hv("x-absent", "new", corev3.HeaderValueOption_ADD_IF_ABSENT),
		hv("x-present", "new", corev3.HeaderValueOption_ADD_IF_ABSENT),
		hv("x-over", "new", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
		hv("x-if", "new", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS),
		hv("x-if-missing", "new", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS),
		{Header: &corev3.HeaderValue{Key: "x-legacy", Value: "l"}, Append: wrapperspb.Bool(false)},
		hv("x-empty", "", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
		hv("x-pct", "100%%", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
	}, []string{"x-remove"}, "add", "remove")
	if err != nil {
		t.Fatal(err)
	}
	vh, err := compileHeaderMods([]*corev3.HeaderValueOption{hv("x-over", "vh", corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)}, nil, "add", "remove")
	if err != nil {
		t.Fatal(err)
	}
	mods := levels(route, vh)
	want := map[string]string{
		"X-Append": "1,2", "X-Absent": "new", "X-Present": "old", "X-Over": "new,vh", "X-If": "new",
		"X-Legacy": "l", "X-Pct": "100%", "X-Keep": "k",
	}
	absent := []string{"X-Remove", "X-If-Missing", "X-Empty"}

	h := http.Header{}
	for _, k := range []string{"X-Append:1", "X-Present:old", "X-Over:old", "X-If:old", "X-Legacy:old", "X-Remove:r", "X-Keep:k"} {
		name, v, _ := strings.Cut(k, ":")
		h.Add(name, v)
	}
	mods.applyHeader(h)
	for k, v := range want {
		if got := strings.Join(h[k], ","); got != v {
			t.Errorf("net/http: %s = %q, want %q", k, got, v)
		}
	}
	for _, k := range absent {
		if _, ok := h[k]; ok {
			t.Errorf("net/http: %s is present", k)
		}
	}

	// The fast path's fields.
	fields := []field{
		{name: "x-append", value: "1"}, {name: "X-Present", value: "old"}, {name: "x-over", value: "old"},
		{name: "x-if", value: "old"}, {name: "x-legacy", value: "old"}, {name: "x-remove", value: "r"},
		{name: "x-keep", value: "k"}, {name: "Host", value: "h", hop: true},
	}
	fields, _ = mods.applyFields(fields)
	req := h1Request{fields: fields}
	for k, v := range want {
		var got []string
		for _, f := range req.fields {
			if !f.hop && strings.EqualFold(f.name, k) {
				got = append(got, f.value)
			}
		}
		if strings.Join(got, ",") != v {
			t.Errorf("fast path: %s = %q, want %q", k, got, v)
		}
	}
	for _, k := range absent {
		for _, f := range req.fields {
			if !f.hop && strings.EqualFold(f.name, k) {
				t.Errorf("fast path: %s is present", k)
			}
		}
	}
}

func TestHashKey(t *testing.T) {
	compile := func(ps ...*routev3.RouteAction_HashPolicy) *route {
		hp, err := compileHashPolicies(ps)
		if err != nil {
			t.Fatal(err)
		}
		return &route{hash: hp}
	}
	header := &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: "x-user"}}}
	cookie := &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_Cookie_{Cookie: &routev3.RouteAction_HashPolicy_Cookie{Name: "session"}}}
	query := &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_QueryParameter_{QueryParameter: &routev3.RouteAction_HashPolicy_QueryParameter{Name: "id"}}}
	source := &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_ConnectionProperties_{ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true}}}
	filterState := &routev3.RouteAction_HashPolicy{PolicySpecifier: &routev3.RouteAction_HashPolicy_FilterState_{FilterState: &routev3.RouteAction_HashPolicy_FilterState{Key: "k"}}}

	req := func(path string, hdr ...string) netRequest {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = "10.0.0.7:5555"
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Add(hdr[i], hdr[i+1])
		}
		return netRequest{r}
	}
	key := func(rt *route, r request) uint64 {
		t.Helper()
		k, ok := rt.hashKey(r)
		if !ok {
			t.Fatalf("no key for %v", r)
		}
		return k
	}

	h := compile(header)
	a1, a2, b := key(h, req("/", "X-User", "alice")), key(h, req("/x", "X-User", "alice")), key(h, req("/", "X-User", "bob"))
	if a1 != a2 || a1 == b {
		t.Errorf("header: alice %x, alice again %x, bob %x", a1, a2, b)
	}
	if _, ok := h.hashKey(req("/")); ok {
		t.Error("header absent: a key")
	}
	// The same key on the fast path's request.
	fast := &h1Request{target: "/", fields: []field{{name: "x-user", value: "alice"}}}
	if got := key(h, fast); got != a1 {
		t.Errorf("fast path key %x, net/http key %x", got, a1)
	}

	c := compile(cookie)
	if key(c, req("/", "Cookie", "a=1; session=s1")) != key(c, req("/", "Cookie", "session=s1")) {
		t.Error("cookie: same session, different keys")
	}
	if _, ok := c.hashKey(req("/", "Cookie", "a=1")); ok {
		t.Error("cookie absent: a key")
	}
	q := compile(query)
	if key(q, req("/p?id=7&x=1")) != key(q, fast2("/q?id=7")) || key(q, req("/p?id=7")) == key(q, req("/p?id=8")) {
		t.Error("query parameter keys")
	}
	s := compile(source)
	if key(s, req("/a")) != key(s, req("/b", "X-User", "z")) {
		t.Error("source ip: same address, different keys")
	}
	if _, ok := compile(filterState).hashKey(req("/")); ok {
		t.Error("filter_state: a key")
	}

	// Several policies combine; a terminal one that produced a key ends
	// the list.
	terminalHeader := &routev3.RouteAction_HashPolicy{PolicySpecifier: header.PolicySpecifier, Terminal: true}
	both := compile(header, query)
	if key(both, req("/?id=1", "X-User", "alice")) == a1 {
		t.Error("two policies: the second did not change the key")
	}
	term := compile(terminalHeader, query)
	if key(term, req("/?id=1", "X-User", "alice")) != a1 {
		t.Error("terminal policy: the next one changed the key")
	}
	if key(term, req("/?id=1")) != key(q, req("/?id=1")) {
		t.Error("terminal policy without input: the next one was not used")
	}
	if !compile(source).h1Needed() {
		t.Error("source ip hashing does not send the route to net/http")
	}
}

func fast2(target string) *h1Request { return &h1Request{target: target} }

// h1Needed reports whether the route is kept off the fast path.
func (r *route) h1Needed() bool { return needsSource(r.hash) }

func TestTrafficCompileErrors(t *testing.T) {
	regex := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/.*"}}}
	for _, tc := range []struct {
		r    *routev3.Route
		want string
	}{
		{&routev3.Route{Match: regex, Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"}, PrefixRewrite: "/x"}}}, "prefix_rewrite needs a prefix"},
		{&routev3.Route{Match: prefix("/"), RequestHeadersToAdd: []*corev3.HeaderValueOption{hv("Host", "x", 0)},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"}}}},
			`request_headers_to_add[0]: header.key: header "Host" cannot be modified`},
		{&routev3.Route{Match: prefix("/"), ResponseHeadersToAdd: []*corev3.HeaderValueOption{hv("x-a", "%DOWNSTREAM_REMOTE_ADDRESS%", 0)},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"}}}},
			"command operators"},
		{&routev3.Route{Match: prefix("/"), RequestHeadersToRemove: []string{":path"},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"}}}},
			"request_headers_to_remove[0]"},
		{&routev3.Route{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/a/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"}}}},
			"path_separated_prefix"},
		{&routev3.Route{Match: prefix("/"), Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier:      &routev3.RouteAction_Cluster{Cluster: "c"},
			RequestMirrorPolicies: []*routev3.RouteAction_RequestMirrorPolicy{{}}}}}, "request_mirror_policies[0].cluster is required"},
	} {
		_, err := compileRoute(tc.r, noClusters)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}
