package build_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/allowlist"
	"github.com/trellis-mesh/trellis/internal/policy/meshhttproute"
	"github.com/trellis-mesh/trellis/internal/policy/meshtcproute"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// routeGolden builds each proxy of testdata/routes/mesh.yaml under docs
// with the route appliers and the traffic policy kinds matched (as the
// control plane runs them), checks every resource passes Envoy's
// validation and trellis-dp's allow-list and that no cluster is emitted
// twice, and compares the
// resources (secrets left out) with testdata/routes/<name>-<proxy>.golden.json.
func routeGolden(t *testing.T, name, docs, mtlsMode string, proxies ...string) {
	t.Helper()
	snap := loadSnapshot(t, "testdata/routes/mesh.yaml")
	snap.Policies = policyItems(t, docs)
	appliers := []proxymodel.Applier{meshhttproute.Applier{}, meshtcproute.Applier{}}
	for _, k := range trafficKinds {
		appliers = append(appliers, proxymodel.MatchApplier{Kind: k})
	}
	ix := proxymodel.NewIndex(snap, appliers...)
	for _, proxy := range proxies {
		p, err := ix.Build(proxy)
		if err != nil {
			t.Fatal(err)
		}
		if mtlsMode != "" {
			p.MTLS = testMTLS(t, mtlsMode, p.Services)
		}
		r, err := build.Sidecar(p)
		if err != nil {
			t.Fatalf("%s: %v", proxy, err)
		}
		for _, res := range r.ByType() {
			for _, x := range res {
				if err := x.(interface{ ValidateAll() error }).ValidateAll(); err != nil {
					t.Fatalf("%s: %T does not pass Envoy's validation: %v", proxy, x, err)
				}
				if errs := allowlist.Check(x.(proto.Message)); len(errs) > 0 {
					t.Fatalf("%s: trellis-dp would NACK %T: %v", proxy, x, errs)
				}
			}
		}
		seen := map[string]bool{}
		for _, c := range r.Clusters {
			if seen[c.GetName()] {
				t.Fatalf("%s: cluster %s is emitted twice", proxy, c.GetName())
			}
			seen[c.GetName()] = true
		}
		if len(r.Endpoints) != len(r.Clusters)-len(p.Inbounds) {
			t.Fatalf("%s: %d load assignments for %d outbound clusters", proxy, len(r.Endpoints), len(r.Clusters)-len(p.Inbounds))
		}
		r.Secrets = nil
		golden(t, "routes/"+name+"-"+proxy, dump(t, r))
	}
}

// httpRoutes is the MeshHTTPRoute set of the e2e scenarios (a header
// match to the v2 subset, a 90/10 split) and every filter, with a
// MeshTimeout whose route and cluster settings must reach every route
// with a route action and every cluster the routes add.
const httpRoutes = `
type: MeshHTTPRoute
mesh: default
name: split
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: MeshService, name: backend}
    rules:
    - matches: [{path: {type: PathPrefix, value: /}}]
      default:
        backendRefs:
        - {kind: MeshServiceSubset, name: backend, tags: {version: v1}, weight: 90}
        - {kind: MeshServiceSubset, name: backend, tags: {version: v2}, weight: 10}
    - matches: [{path: {type: PathPrefix, value: /old}}]
      default:
        filters:
        - type: RequestRedirect
          requestRedirect: {scheme: https, hostname: example.com, port: 8443, statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
---
type: MeshHTTPRoute
mesh: default
name: web-routes
spec:
  targetRef: {kind: MeshService, name: web}
  to:
  - targetRef: {kind: MeshService, name: backend}
    rules:
    - matches: [{path: {type: PathPrefix, value: /}, headers: [{name: x-version, value: v2}]}]
      default:
        backendRefs: [{kind: MeshServiceSubset, name: backend, tags: {version: v2}}]
    - matches: [{path: {type: PathPrefix, value: /api}, method: GET, queryParams: [{type: Exact, name: debug, value: "1"}, {type: RegularExpression, name: id, value: "[0-9]+"}]}]
      default:
        filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: {set: [{name: x-env, value: "a,b"}], add: [{name: x-add, value: "1"}], remove: [x-drop]}
        - type: ResponseHeaderModifier
          responseHeaderModifier: {set: [{name: x-served-by, value: route}], remove: [server]}
        - type: URLRewrite
          urlRewrite: {hostname: backend.internal, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v1/api}}
        - type: RequestMirror
          requestMirror: {percentage: "12.5", backendRef: {kind: MeshService, name: backend-canary}}
    - matches: [{path: {type: PathPrefix, value: /strip}}]
      default:
        filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]
    - matches: [{path: {type: RegularExpression, value: "/items/[0-9]+"}}, {path: {type: Exact, value: /full}}]
      default:
        filters:
        - {type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /index}}}
        - {type: RequestMirror, requestMirror: {percentage: 5, backendRef: {kind: MeshServiceSubset, name: backend, tags: {version: v2}}}}
    - matches: [{path: {type: PathPrefix, value: /}, headers: [{name: x-canary, type: Present}, {name: x-debug, type: Absent}, {name: x-user, type: RegularExpression, value: "u[0-9]+"}, {name: x-team, type: Prefix, value: core}]}]
      default:
        backendRefs: [{kind: MeshService, name: backend-canary, weight: 1}, {kind: MeshService, name: backend, weight: 0}]
---
type: MeshTimeout
mesh: default
name: timeouts
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Mesh}
    default:
      connectionTimeout: 2s
      http: {requestTimeout: 500ms}
`

// MeshHTTPRoute on an HTTP outbound: Kuma's route order, matches,
// weighted subset clusters, header changes, redirect, rewrites and
// mirrors; the proxy a web-only policy does not select gets only the
// mesh-wide split.
func TestRoutesHTTPGolden(t *testing.T) {
	routeGolden(t, "http", httpRoutes, "", "web-1", "edge-1")
}

// With mTLS, every route cluster originates mTLS to its own service's
// identity (backend-canary's SAN for its cluster).
func TestRoutesHTTPMTLSGolden(t *testing.T) {
	routeGolden(t, "http-mtls", httpRoutes, proxymodel.MTLSStrict, "web-1")
}

// MeshHTTPRoute on a gRPC outbound: gRPC methods are paths, subsets are
// HTTP/2 clusters.
func TestRoutesGRPCGolden(t *testing.T) {
	routeGolden(t, "grpc", `
type: MeshHTTPRoute
mesh: default
name: greeter
spec:
  to:
  - targetRef: {kind: MeshService, name: greeter}
    rules:
    - matches: [{path: {type: Exact, value: /helloworld.Greeter/SayHello}}]
      default:
        backendRefs: [{kind: MeshServiceSubset, name: greeter, tags: {version: v2}}]
    - matches: [{path: {type: PathPrefix, value: /}, headers: [{name: x-greeter, value: v1}]}]
      default:
        backendRefs: [{kind: MeshServiceSubset, name: greeter, tags: {version: v1}}]
    - matches: [{path: {type: PathPrefix, value: /}}]
      default:
        backendRefs:
        - {kind: MeshServiceSubset, name: greeter, tags: {version: v1}, weight: 50}
        - {kind: MeshServiceSubset, name: greeter, tags: {version: v2}, weight: 50}
`, "", "web-1")
}

// MeshTCPRoute: a weighted tcp_proxy over subset clusters; an http2
// outbound routed by a MeshTCPRoute only becomes TCP; a MeshHTTPRoute for
// the same destination wins over it.
func TestRoutesTCPGolden(t *testing.T) {
	routeGolden(t, "tcp", `
type: MeshTCPRoute
mesh: default
name: tcp
spec:
  to:
  - targetRef: {kind: MeshService, name: redis}
    rules:
    - default:
        backendRefs:
        - {kind: MeshServiceSubset, name: redis, tags: {role: primary}, weight: 3}
        - {kind: MeshServiceSubset, name: redis, tags: {role: replica}, weight: 1}
  - targetRef: {kind: MeshService, name: api}
    rules:
    - default:
        backendRefs: [{kind: MeshService, name: api}]
  - targetRef: {kind: MeshService, name: backend}
    rules:
    - default:
        backendRefs: [{kind: MeshService, name: backend-canary}]
---
type: MeshHTTPRoute
mesh: default
name: backend-http
spec:
  to:
  - targetRef: {kind: MeshService, name: backend}
    rules:
    - matches: [{path: {type: PathPrefix, value: /v2}}]
      default:
        backendRefs: [{kind: MeshServiceSubset, name: backend, tags: {version: v2}}]
`, "", "web-1")
}

// The route plugin respects plugin.go's read rules: a proxy's inbound and
// outbound parts, built apart, give exactly the whole build.
func TestRoutesBuildSharedParts(t *testing.T) {
	snap := loadSnapshot(t, "testdata/routes/mesh.yaml")
	snap.Policies = policyItems(t, httpRoutes)
	ix := proxymodel.NewIndex(snap, meshhttproute.Applier{}, meshtcproute.Applier{}, proxymodel.MatchApplier{Kind: "MeshTimeout"})
	for _, mode := range []string{"", proxymodel.MTLSStrict} {
		for _, name := range []string{"web-1", "edge-1"} {
			p, err := ix.Build(name)
			if err != nil {
				t.Fatal(err)
			}
			if mode != "" {
				p.MTLS = testMTLS(t, mode, p.Services)
			}
			whole, err := build.Sidecar(p)
			if err != nil {
				t.Fatal(err)
			}
			in, out := *p, *p
			in.Outbounds, in.Policies = nil, policiesHalf(p.Policies, true)
			out.Inbounds, out.Name, out.Policies = nil, "", policiesHalf(p.Policies, false)
			got := map[string]proto.Message{}
			for _, part := range []*proxymodel.Proxy{&in, &out} {
				res, err := build.Sidecar(part)
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range resourcesByName(res) {
					got[k] = v
				}
			}
			want := resourcesByName(whole)
			if len(got) != len(want) {
				t.Fatalf("%s %s: the parts have %d resources, the whole build %d", mode, name, len(got), len(want))
			}
			for k, w := range want {
				if !proto.Equal(got[k], w) {
					t.Errorf("%s %s: %s differs between the parts and the whole build", mode, name, k)
				}
			}
		}
	}
}
