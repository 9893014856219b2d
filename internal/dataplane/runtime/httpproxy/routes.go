package httpproxy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/cluster"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/xdsutil"
)

// defaultRouteTimeout is Envoy's RouteAction.timeout default.
const defaultRouteTimeout = 15 * time.Second

// Resolver returns the cluster with the given name in the configuration
// being built, or nil when it has not arrived yet.
type Resolver func(name string) *cluster.Cluster

// RouteTable is a compiled RouteConfiguration, immutable once built.
type RouteTable struct {
	name     string
	exact    map[string]*virtualHost
	suffixes []wildcardHost // "*.example.com", longest first
	prefixes []wildcardHost // "example.*", longest first
	fallback *virtualHost   // "*"
}

// Name returns the RouteConfiguration's name.
func (t *RouteTable) Name() string { return t.name }

type wildcardHost struct {
	fix string // the domain without its '*'
	vh  *virtualHost
}

type virtualHost struct {
	name   string
	routes []route
}

type actionKind uint8

const (
	actionForward actionKind = iota
	actionDirect
	actionRedirect
)

type route struct {
	match routeMatch
	kind  actionKind

	// actionForward
	targets []target
	total   uint32
	timeout time.Duration // 0: none
	h1      bool          // no target is an HTTP/2 cluster: the fast path can forward it
	res     resilience    // retry policy and stream idle timeout (retry.go)

	// Request and response header edits, route level first; rewrites;
	// mirrors; hash policies (modifiers.go, rewrite.go, mirror.go,
	// hash.go).
	reqMods     modLevels
	respMods    modLevels
	rewrite     *pathRewrite
	hostRewrite string
	mirrors     []mirrorPolicy
	hash        []hashPolicy

	// actionDirect
	status int
	body   string

	// actionRedirect
	redirect *redirect
}

type target struct {
	name    string
	cluster *cluster.Cluster
	weight  uint32
}

// CompileRouteConfiguration checks a RouteConfiguration and compiles it
// into a RouteTable whose routes point at the resolved clusters.
func CompileRouteConfiguration(rc *routev3.RouteConfiguration, resolve Resolver) (*RouteTable, error) {
	t := &RouteTable{name: rc.GetName(), exact: map[string]*virtualHost{}}
	var outer levelMods
	rcReq, err := compileHeaderMods(rc.GetRequestHeadersToAdd(), rc.GetRequestHeadersToRemove(), "request_headers_to_add", "request_headers_to_remove")
	if err != nil {
		return nil, err
	}
	rcResp, err := compileHeaderMods(rc.GetResponseHeadersToAdd(), rc.GetResponseHeadersToRemove(), "response_headers_to_add", "response_headers_to_remove")
	if err != nil {
		return nil, err
	}
	outer.req, outer.resp = levels(rcReq), levels(rcResp)
	seen := map[string]string{}
	for i, vhc := range rc.GetVirtualHosts() {
		vh, err := compileVirtualHost(vhc, resolve, &outer)
		if err != nil {
			return nil, fmt.Errorf("virtual_hosts[%d] (%q): %w", i, vhc.GetName(), err)
		}
		for _, d := range vhc.GetDomains() {
			d = strings.ToLower(d)
			if other, dup := seen[d]; dup {
				return nil, fmt.Errorf("virtual_hosts[%d] (%q): domain %q is also in virtual host %q", i, vhc.GetName(), d, other)
			}
			seen[d] = vhc.GetName()
			switch {
			case d == "*":
				t.fallback = vh
			case strings.HasPrefix(d, "*"):
				t.suffixes = append(t.suffixes, wildcardHost{fix: d[1:], vh: vh})
			case strings.HasSuffix(d, "*"):
				t.prefixes = append(t.prefixes, wildcardHost{fix: d[:len(d)-1], vh: vh})
			case strings.Contains(d, "*"):
				return nil, fmt.Errorf("virtual_hosts[%d] (%q): domain %q: a wildcard must be at the start or the end", i, vhc.GetName(), d)
			default:
				t.exact[d] = vh
			}
		}
	}
	longestFirst := func(a, b wildcardHost) int { return len(b.fix) - len(a.fix) }
	slices.SortStableFunc(t.suffixes, longestFirst)
	slices.SortStableFunc(t.prefixes, longestFirst)
	return t, nil
}

// levelMods are the header edits of an enclosing level (a virtual host,
// the route configuration) for the routes inside it.
type levelMods struct {
	req, resp modLevels
}

func compileVirtualHost(vhc *routev3.VirtualHost, resolve Resolver, rcMods *levelMods) (*virtualHost, error) {
	if vhc.GetName() == "" {
		return nil, errors.New("name is required")
	}
	if len(vhc.GetDomains()) == 0 {
		return nil, errors.New("domains is empty")
	}
	vhReq, err := compileHeaderMods(vhc.GetRequestHeadersToAdd(), vhc.GetRequestHeadersToRemove(), "request_headers_to_add", "request_headers_to_remove")
	if err != nil {
		return nil, err
	}
	vhResp, err := compileHeaderMods(vhc.GetResponseHeadersToAdd(), vhc.GetResponseHeadersToRemove(), "response_headers_to_add", "response_headers_to_remove")
	if err != nil {
		return nil, err
	}
	vh := &virtualHost{name: vhc.GetName()}
	for i, rc := range vhc.GetRoutes() {
		r, err := compileRoute(rc, resolve)
		if err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		// Envoy applies the route's edits, then the virtual host's, then
		// the route configuration's.
		r.reqMods = appendLevels(r.reqMods, levels(vhReq), rcMods.req)
		r.respMods = appendLevels(r.respMods, levels(vhResp), rcMods.resp)
		vh.routes = append(vh.routes, r)
	}
	return vh, nil
}

func compileRoute(rc *routev3.Route, resolve Resolver) (route, error) {
	var r route
	if rc.GetMatch() == nil {
		return r, errors.New("match is required")
	}
	var err error
	if r.match, err = compileRouteMatch(rc.GetMatch()); err != nil {
		return r, fmt.Errorf("match: %w", err)
	}
	req, err := compileHeaderMods(rc.GetRequestHeadersToAdd(), rc.GetRequestHeadersToRemove(), "request_headers_to_add", "request_headers_to_remove")
	if err != nil {
		return r, err
	}
	resp, err := compileHeaderMods(rc.GetResponseHeadersToAdd(), rc.GetResponseHeadersToRemove(), "response_headers_to_add", "response_headers_to_remove")
	if err != nil {
		return r, err
	}
	r.reqMods, r.respMods = levels(req), levels(resp)
	switch a := rc.GetAction().(type) {
	case *routev3.Route_Route:
		r.kind = actionForward
		if err := r.compileForward(a.Route, resolve); err != nil {
			return r, fmt.Errorf("route: %w", err)
		}
	case *routev3.Route_DirectResponse:
		r.kind = actionDirect
		r.status = int(a.DirectResponse.GetStatus())
		if r.status < 200 || r.status > 599 {
			return r, fmt.Errorf("direct_response.status %d is out of range 200-599", r.status)
		}
		if b := a.DirectResponse.GetBody(); b != nil {
			if b.GetInlineBytes() != nil {
				r.body = string(b.GetInlineBytes())
			} else {
				r.body = b.GetInlineString()
			}
		}
	case *routev3.Route_Redirect:
		r.kind = actionRedirect
		if r.redirect, err = compileRedirect(a.Redirect, r.match.kind); err != nil {
			return r, fmt.Errorf("redirect: %w", err)
		}
	default:
		return r, errors.New("an action is required (route, redirect or direct_response)")
	}
	return r, nil
}

func (r *route) compileForward(a *routev3.RouteAction, resolve Resolver) error {
	switch {
	case a.GetWeightedClusters() != nil:
		for i, cw := range a.GetWeightedClusters().GetClusters() {
			if cw.GetName() == "" {
				return fmt.Errorf("weighted_clusters.clusters[%d].name is required", i)
			}
			w := cw.GetWeight().GetValue()
			r.targets = append(r.targets, target{name: cw.GetName(), cluster: resolve(cw.GetName()), weight: w})
			r.total += w
		}
		if r.total == 0 {
			return errors.New("weighted_clusters: the weights add up to zero")
		}
	case a.GetCluster() != "":
		r.targets = []target{{name: a.GetCluster(), cluster: resolve(a.GetCluster()), weight: 1}}
		r.total = 1
	default:
		return errors.New("cluster or weighted_clusters is required (the cluster name is empty)")
	}
	r.h1 = true
	for _, t := range r.targets {
		if t.cluster != nil && t.cluster.HTTP2() {
			r.h1 = false
		}
	}
	var err error
	if r.timeout, err = xdsutil.Duration(a.GetTimeout(), defaultRouteTimeout); err != nil {
		return fmt.Errorf("timeout: %w", err)
	}
	if err := r.compileTraffic(a, resolve); err != nil {
		return err
	}
	return r.res.compile(a)
}

// compileTraffic compiles what the traffic policies (MeshHTTPRoute,
// MeshLoadBalancingStrategy) set on a RouteAction: rewrites, mirrors and
// hash policies. Mirrors and hashing of the source address need the
// net/http path.
func (r *route) compileTraffic(a *routev3.RouteAction, resolve Resolver) error {
	var err error
	if r.rewrite, err = compilePathRewrite(a, &r.match); err != nil {
		return err
	}
	if hr := a.GetHostRewriteLiteral(); hr != "" {
		if !validHost(hr) {
			return fmt.Errorf("host_rewrite_literal %q is not a valid host", hr)
		}
		r.hostRewrite = hr
	}
	if r.mirrors, err = compileMirrors(a.GetRequestMirrorPolicies(), resolve); err != nil {
		return err
	}
	if r.hash, err = compileHashPolicies(a.GetHashPolicy()); err != nil {
		return err
	}
	if len(r.mirrors) > 0 || needsSource(r.hash) {
		r.h1 = false
	}
	return nil
}

// levels returns the levels that have edits.
func levels(ms ...*headerMods) modLevels {
	var l modLevels
	for _, m := range ms {
		if m != nil {
			l = append(l, m)
		}
	}
	return l
}

// appendLevels appends enclosing levels to a route's.
func appendLevels(l modLevels, more ...modLevels) modLevels {
	for _, m := range more {
		l = append(l, m...)
	}
	return l
}

// virtualHost selects the virtual host for a Host/:authority value the way
// Envoy does: exact domain, then the longest "*.suffix", then the longest
// "prefix.*", then "*". Matching is case-insensitive and includes the port
// when the request carries one.
func (t *RouteTable) virtualHost(host string) *virtualHost {
	host = lower(host)
	if vh, ok := t.exact[host]; ok {
		return vh
	}
	for _, w := range t.suffixes {
		if len(host) > len(w.fix) && strings.HasSuffix(host, w.fix) {
			return w.vh
		}
	}
	for _, w := range t.prefixes {
		if len(host) > len(w.fix) && strings.HasPrefix(host, w.fix) {
			return w.vh
		}
	}
	return t.fallback
}

// route returns the first route of the matching virtual host that matches
// the request, or nil.
func (t *RouteTable) route(r request, path, pathOnly string) *route {
	vh := t.virtualHost(r.authority())
	if vh == nil {
		return nil
	}
	for i := range vh.routes {
		if vh.routes[i].match.matches(r, path, pathOnly) {
			return &vh.routes[i]
		}
	}
	return nil
}

// lower lower-cases ASCII s, allocating only when s has upper-case letters.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
