package proxymodel

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"
	"sync"

	"github.com/trellis-mesh/trellis/api/mesh"
)

// Route policies (MeshHTTPRoute, MeshTCPRoute) decide, per outbound, how
// requests and connections are spread over clusters: the outbound's own
// cluster (named after its service), subset clusters (the endpoints of a
// service that carry some tags) and clusters of other services. Their
// appliers (internal/policy/meshhttproute, internal/policy/meshtcproute)
// fill HTTPRoutes, TCPBackends and RouteClusters (names, services and
// tags); Index.Build then gives every route cluster its protocol and
// endpoints (resolveRouteClusters).

// Route policy kinds whose backends Index.Fingerprint follows.
const (
	httpRouteKind = "MeshHTTPRoute"
	tcpRouteKind  = "MeshTCPRoute"
)

// HTTPRoute is one route of an HTTP outbound; an outbound's routes are
// tried in order, the first that matches handles the request.
type HTTPRoute struct {
	Match HTTPMatch
	// Backends split the requests by weight (at least one, unless
	// Redirect is set).
	Backends []RouteBackend
	// RequestHeaders and ResponseHeaders change headers.
	RequestHeaders  HeaderChanges
	ResponseHeaders HeaderChanges
	// Redirect, when set, answers with a redirect instead of forwarding.
	Redirect *Redirect
	// Rewrite changes the request before it is forwarded.
	Rewrite *Rewrite
	// Mirrors copy requests to other clusters.
	Mirrors []Mirror
}

// Path match types of HTTPMatch.PathType (as MeshHTTPRoute names them).
const (
	PathExact  = "Exact"
	PathPrefix = "PathPrefix"
	PathRegex  = "RegularExpression"
)

// HTTPMatch is what a request must fit: every part that is set.
type HTTPMatch struct {
	// PathType is PathExact, PathPrefix or PathRegex; Path its value.
	PathType string
	Path     string
	// Method is an HTTP method name ("" matches any).
	Method string
	// Headers and QueryParams must all fit.
	Headers     []ValueMatch
	QueryParams []ValueMatch
}

// Value match types of ValueMatch.Type (MeshHTTPRoute header and query
// parameter match types).
const (
	MatchExact   = "Exact"
	MatchRegex   = "RegularExpression"
	MatchPresent = "Present"
	MatchAbsent  = "Absent"
	MatchPrefix  = "Prefix"
)

// ValueMatch matches one header or query parameter.
type ValueMatch struct {
	Type  string
	Name  string
	Value string
}

// RouteBackend is a cluster and its share of the traffic.
type RouteBackend struct {
	Cluster string
	Weight  uint32
}

// HeaderChanges are header edits, applied as listed.
type HeaderChanges struct {
	// Add adds headers; Replace says a header's earlier values go.
	Add []HeaderValue
	// Remove names headers to delete.
	Remove []string
}

// HeaderValue is a header to add.
type HeaderValue struct {
	Name  string
	Value string
	// Replace overwrites the header when present instead of appending.
	Replace bool
}

// Redirect is a redirect answer built from the request: each part that is
// set replaces the request's.
type Redirect struct {
	Scheme string
	Host   string
	Port   uint32
	// Path replaces the whole path, or PrefixRewrite the matched prefix
	// (when HasPrefixRewrite).
	Path             string
	PrefixRewrite    string
	HasPrefixRewrite bool
	// Status is 301, 302, 303, 307 or 308.
	Status int
}

// Rewrite changes the request before it is forwarded.
type Rewrite struct {
	// Host replaces the Host header (when not empty).
	Host string
	// PrefixRewrite replaces the matched path prefix (when
	// HasPrefixRewrite); otherwise RegexPattern matches the path and
	// RegexSubstitution replaces what it matched (when RegexPattern is
	// not empty).
	PrefixRewrite     string
	HasPrefixRewrite  bool
	RegexPattern      string
	RegexSubstitution string
}

// Mirror copies a share of the requests to a cluster; the answers are
// dropped.
type Mirror struct {
	Cluster string
	// Numerator over Denominator (100, 10000 or 1000000) of the requests
	// are copied; Denominator 0 means all of them.
	Numerator   uint32
	Denominator uint32
}

// RouteCluster is a cluster an outbound's routes send to, other than the
// outbound's own: a subset of a service's endpoints, or another service.
type RouteCluster struct {
	// Name is the service's name, or SubsetClusterName for a subset.
	Name    string
	Service string
	// Tags are the subset's tags (kuma.io/service aside); empty for a
	// whole service.
	Tags map[string]string
	// Protocol and Endpoints are filled by Index.Build: the service's
	// protocol and the ready endpoints carrying Tags.
	Protocol  string
	Endpoints []Endpoint
}

// SubsetClusterName names the cluster of the endpoints of service that
// carry tags: "<service>-<8 hex digits of a hash of the sorted tags>", or
// the service itself when tags are empty. kuma.io/service in tags is
// ignored.
func SubsetClusterName(service string, tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		if k != mesh.ServiceTag {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return service
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(tags[k])
		b.WriteByte(0)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return service + "-" + hex.EncodeToString(sum[:4])
}

// resolveRouteClusters gives the route clusters of p's outbounds their
// service's protocol (tcp for the clusters of TCPBackends) and the ready
// endpoints carrying their tags.
func (ix *Index) resolveRouteClusters(p *Proxy) {
	for i := range p.Outbounds {
		out := &p.Outbounds[i]
		for j := range out.RouteClusters {
			rc := &out.RouteClusters[j]
			rc.Protocol = ix.Protocol(rc.Service)
			if out.TCPBackends != nil {
				rc.Protocol = mesh.ProtocolTCP // clusters of a tcp_proxy
			}
			all := ix.EndpointsFor(p.Zone, rc.Service)
			if len(rc.Tags) == 0 {
				rc.Endpoints = all
				continue
			}
			eps := []Endpoint{}
			for _, ep := range all {
				if carries(ep.Tags, rc.Tags) {
					eps = append(eps, ep)
				}
			}
			rc.Endpoints = eps
		}
	}
}

func carries(tags, want map[string]string) bool {
	for k, v := range want {
		if got, ok := tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// routeRefs is the part of a route policy spec that names services.
type routeRefs struct {
	To []struct {
		Rules []struct {
			Default struct {
				BackendRefs []struct {
					Name string `json:"name"`
				} `json:"backendRefs"`
				Filters []struct {
					RequestMirror *struct {
						BackendRef struct {
							Name string `json:"name"`
						} `json:"backendRef"`
					} `json:"requestMirror"`
				} `json:"filters"`
			} `json:"default"`
		} `json:"rules"`
	} `json:"to"`
}

// routeServicesMemo holds the services route policies name, once per
// index.
type routeServicesMemo struct {
	once     sync.Once
	services []string
}

// routeServices returns, sorted, every service the mesh's route policies
// send to or mirror to: a proxy's model depends on their endpoints, so
// Fingerprint covers them (for every proxy, which is simple and errs on
// the side of rebuilding).
func (ix *Index) routeServices() []string {
	ix.routes.once.Do(func() {
		seen := map[string]bool{}
		for _, kind := range []string{httpRouteKind, tcpRouteKind} {
			for _, p := range ix.snap.Policies[kind] {
				raw, err := json.Marshal(p.Spec)
				if err != nil {
					continue // the applier reports it
				}
				var s routeRefs
				if json.Unmarshal(raw, &s) != nil {
					continue
				}
				for _, to := range s.To {
					for _, r := range to.Rules {
						for _, b := range r.Default.BackendRefs {
							seen[b.Name] = true
						}
						for _, f := range r.Default.Filters {
							if f.RequestMirror != nil {
								seen[f.RequestMirror.BackendRef.Name] = true
							}
						}
					}
				}
			}
		}
		delete(seen, "")
		for svc := range seen {
			ix.routes.services = append(ix.routes.services, svc)
		}
		sort.Strings(ix.routes.services)
	})
	return ix.routes.services
}

// RouteCluster returns the name of the cluster of the endpoints of service
// carrying tags (SubsetClusterName) and, unless it is the outbound's own
// cluster or listed already, adds it to RouteClusters.
func (out *Outbound) RouteCluster(service string, tags map[string]string) string {
	sub := map[string]string{}
	for k, v := range tags {
		if k != mesh.ServiceTag {
			sub[k] = v
		}
	}
	name := SubsetClusterName(service, sub)
	if name == out.Service {
		return name
	}
	for _, rc := range out.RouteClusters {
		if rc.Name == name {
			return name
		}
	}
	if len(sub) == 0 {
		sub = nil
	}
	out.RouteClusters = append(out.RouteClusters, RouteCluster{Name: name, Service: service, Tags: sub})
	return name
}
