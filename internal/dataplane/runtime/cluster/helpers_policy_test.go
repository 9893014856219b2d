package cluster

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/secret"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// backend is a loopback HTTP server that answers its id with a status
// that the test can change, and counts the requests per path.
type backend struct {
	id     string
	addr   string
	status atomic.Int32
	hits   atomic.Int64 // requests other than /health
	checks atomic.Int64 // requests to /health
	header atomic.Value // the last /health request's X-Check header
}

func newBackend(t *testing.T, id string) *backend {
	t.Helper()
	b := &backend{id: id}
	b.status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			b.checks.Add(1)
			b.header.Store(r.Header.Get("X-Check") + "|" + r.Host)
		} else {
			b.hits.Add(1)
		}
		w.WriteHeader(int(b.status.Load()))
		_, _ = io.WriteString(w, b.id)
	}))
	t.Cleanup(srv.Close)
	b.addr = srv.Listener.Addr().String()
	return b
}

// staticCluster is a STATIC cluster whose load assignment has one
// locality per priority level (levels[p] are the addresses at priority p).
func staticCluster(name string, levels ...[]string) *clusterv3.Cluster {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: name}
	for p, addrs := range levels {
		lle := &endpointv3.LocalityLbEndpoints{Priority: uint32(p)}
		for _, a := range addrs {
			host, port, _ := net.SplitHostPort(a)
			pn, _ := strconv.Atoi(port)
			lle.LbEndpoints = append(lle.LbEndpoints, &endpointv3.LbEndpoint{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
						Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(pn)},
					}}},
				}},
			})
		}
		cla.Endpoints = append(cla.Endpoints, lle)
	}
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(time.Second),
		LoadAssignment:       cla,
	}
}

// testManager returns a Manager whose clusters are stopped at the end of
// the test, and its metrics.
func testManager(t *testing.T) (*Manager, *stats.Store) {
	t.Helper()
	st := stats.NewStore()
	m := NewManager(st, secret.NewStore())
	t.Cleanup(m.Close)
	return m, st
}

// install prepares and commits defs, failing the test on an error.
func install(t *testing.T, m *Manager, st *stats.Store, defs ...*clusterv3.Cluster) *Plan {
	t.Helper()
	p, err := prepare(m, st, defs...)
	if err != nil {
		t.Fatal(err)
	}
	p.Commit(time.Second)
	return p
}

func prepare(m *Manager, st *stats.Store, defs ...*clusterv3.Cluster) (*Plan, error) {
	byName := map[string]*clusterv3.Cluster{}
	for _, d := range defs {
		byName[d.GetName()] = d
	}
	return m.Prepare(byName, nil, st)
}

// get sends one request through the cluster the way the HTTP proxy does
// (Begin, PickHash, the exchange, Done) and returns the status and body.
func get(t *testing.T, c *Cluster, path string) (int, string) {
	t.Helper()
	req, err := c.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := c.Pick()
	if err != nil {
		req.Done("", Outcome{Err: err, LocalOrigin: true})
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodGet, c.Scheme()+"://"+addr+path, nil)
	resp, err := c.Transport().RoundTrip(r)
	if err != nil {
		req.Done(addr, Outcome{Err: err, LocalOrigin: true})
		return 0, ""
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	req.Done(addr, Outcome{Status: resp.StatusCode})
	return resp.StatusCode, string(body)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// picks returns the addresses of n picks, each reported done at once.
func picks(c *Cluster, n int) map[string]int {
	out := map[string]int{}
	for range n {
		req, err := c.Begin(false)
		if err != nil {
			out["overflow"]++
			continue
		}
		addr, err := c.Pick()
		if err != nil {
			out["none"]++
		} else {
			out[addr]++
		}
		req.Done(addr, Outcome{Status: 200})
	}
	return out
}

func errContains(err error, sub string) bool { return err != nil && strings.Contains(err.Error(), sub) }

// freePort returns a loopback address where nothing listens.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
