package proxystats

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// ServiceMap is the answer of GET /meshes/{mesh}/_service-map: the services
// of a mesh and the traffic between them over the window, from the
// counters proxies stream to the control plane.
type ServiceMap struct {
	Mesh string `json:"mesh"`
	// Window is how far back the rates look, as a Go duration ("30s").
	Window string `json:"window"`
	// Updated is when the newest sample used arrived (RFC 3339), or when
	// the map was computed if there is none.
	Updated  string        `json:"updated"`
	Services []ServiceNode `json:"services"`
	Edges    []Edge        `json:"edges"`
}

// ServiceNode is one service of the mesh and its proxies.
type ServiceNode struct {
	Name       string         `json:"name"`
	Dataplanes DataplaneCount `json:"dataplanes"`
}

// DataplaneCount counts a service's proxies.
type DataplaneCount struct {
	Total   int `json:"total"`
	Online  int `json:"online"`
	Offline int `json:"offline"`
}

// Edge is the traffic from the proxies of one service to another service
// within the window.
type Edge struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	// RequestsPerSecond is the rate of upstream requests.
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	// ErrorRate is the share of those requests answered 5xx (0..1).
	ErrorRate float64 `json:"errorRate"`
	// Requests counts the requests in the window.
	Requests uint64 `json:"requests"`
	// ConnectionsPerSecond is the rate of upstream connections (TCP
	// services have connections but no requests).
	ConnectionsPerSecond float64 `json:"connectionsPerSecond,omitempty"`
}

// edgeSum accumulates one edge over the proxies of its source.
type edgeSum struct {
	requests, errors, connections uint64
	rps, cps                      float64
}

// ServiceMap computes the map of a mesh whose services (with their proxy
// counts) are given. Destinations are the services whose outbound clusters
// the proxies report: a cluster named after a service of the mesh, or a
// subset cluster "<service>-<8 hex digits>"; other clusters (localhost:*,
// inbound:*, the ADS cluster, sinks) are not services and are skipped.
func (s *Store) ServiceMap(mesh string, services []ServiceNode) *ServiceMap {
	now := s.now()
	known := map[string]bool{}
	for _, sv := range services {
		known[sv.Name] = true
	}
	sums := map[[2]string]*edgeSum{}
	var newest time.Time
	s.mu.Lock()
	for key, p := range s.proxies {
		if key.Mesh != mesh || len(p.services) == 0 || len(p.samples) == 0 {
			continue
		}
		last := p.samples[len(p.samples)-1]
		if now.Sub(last.Time) > s.window {
			continue // the proxy went quiet
		}
		if last.Time.After(newest) {
			newest = last.Time
		}
		base := baseline(p.samples, now.Add(-s.window))
		dt := last.Time.Sub(base.Time).Seconds()
		for cluster, c := range last.Clusters {
			dst := destination(cluster, known)
			if dst == "" {
				continue
			}
			b := base.Clusters[cluster]
			e := sums[[2]string{p.services[0], dst}]
			if e == nil {
				e = &edgeSum{}
				sums[[2]string{p.services[0], dst}] = e
			}
			rq, er, cx := delta(c.Requests, b.Requests), delta(c.Errors, b.Errors), delta(c.Connections, b.Connections)
			if dt <= 0 { // a single sample: no rate yet
				rq, er, cx = 0, 0, 0
			}
			e.requests += rq
			e.errors += er
			e.connections += cx
			if dt > 0 {
				e.rps += float64(rq) / dt
				e.cps += float64(cx) / dt
			}
		}
	}
	s.mu.Unlock()
	if newest.IsZero() {
		newest = now
	}
	out := &ServiceMap{
		Mesh: mesh, Window: s.window.String(), Updated: newest.UTC().Format(time.RFC3339),
		Services: slices.SortedFunc(slices.Values(services), func(a, b ServiceNode) int { return cmp.Compare(a.Name, b.Name) }),
		Edges:    []Edge{},
	}
	if out.Services == nil {
		out.Services = []ServiceNode{}
	}
	for k, e := range sums {
		edge := Edge{Source: k[0], Destination: k[1], Requests: e.requests, RequestsPerSecond: round(e.rps), ConnectionsPerSecond: round(e.cps)}
		if e.requests > 0 {
			edge.ErrorRate = round(float64(min(e.errors, e.requests)) / float64(e.requests))
		}
		out.Edges = append(out.Edges, edge)
	}
	slices.SortFunc(out.Edges, func(a, b Edge) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Destination, b.Destination))
	})
	return out
}

// baseline returns the newest sample at or before since, else the oldest.
func baseline(samples []Sample, since time.Time) Sample {
	base := samples[0]
	for _, sm := range samples {
		if sm.Time.After(since) {
			break
		}
		base = sm
	}
	return base
}

// delta is the increase of a counter; a counter that went down was reset
// (the proxy restarted), so all of its value is new.
func delta(now, before uint64) uint64 {
	if now < before {
		return now
	}
	return now - before
}

// round keeps three decimals, so the JSON stays readable and stable.
func round(v float64) float64 {
	return float64(int64(v*1000+0.5)) / 1000
}

// destination maps an outbound cluster name to the service it reaches, or
// "" when it is not a service of the mesh.
func destination(cluster string, known map[string]bool) string {
	if known[cluster] {
		return cluster
	}
	i := strings.LastIndexByte(cluster, '-')
	if i > 0 && isHex8(cluster[i+1:]) && known[cluster[:i]] {
		return cluster[:i]
	}
	return ""
}

func isHex8(s string) bool {
	if len(s) != 8 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}
