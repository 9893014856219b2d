package cluster

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

func withProtocol(t *testing.T, def *clusterv3.Cluster, common *corev3.HttpProtocolOptions) *clusterv3.Cluster {
	t.Helper()
	a, err := anypb.New(&upstreamhttpv3.HttpProtocolOptions{
		CommonHttpProtocolOptions: common,
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corev3.Http1ProtocolOptions{}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	def.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpProtocolOptionsKey: a}
	return def
}

// connCounter is an HTTP backend that counts the connections it accepted
// and has open.
func connCounter(t *testing.T) (string, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	var total, open atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			total.Add(1)
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), &total, &open
}

// h1Exchange sends one GET over the fast path's pool.
func h1Exchange(t *testing.T, c *Cluster, addr string) {
	t.Helper()
	pc, err := c.GetH1(addr, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(pc.W, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := pc.W.Flush(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(pc.R, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.PutH1(pc)
}

func TestProtocolOptionsIdleTimeout(t *testing.T) {
	addr, total, open := connCounter(t)
	m, st := testManager(t)
	c := install(t, m, st, withProtocol(t, staticCluster("i", []string{addr}), &corev3.HttpProtocolOptions{
		IdleTimeout:       durationpb.New(200 * time.Millisecond),
		MaxStreamDuration: durationpb.New(3 * time.Second),
	})).Get("i")
	if c.MaxStreamDuration() != 3*time.Second || c.IdleTimeout() != 200*time.Millisecond {
		t.Fatalf("max stream %s idle %s", c.MaxStreamDuration(), c.IdleTimeout())
	}
	// Fast path: the idle connection is closed by the pool.
	h1Exchange(t, c, addr)
	waitFor(t, 5*time.Second, "the idle fast-path connection closed", func() bool { return open.Load() == 0 })
	// net/http transport: the same.
	get(t, c, "/")
	waitFor(t, 5*time.Second, "the idle transport connection closed", func() bool { return open.Load() == 0 })
	if total.Load() != 2 {
		t.Fatalf("%d connections", total.Load())
	}
	if st.Snapshot()["cluster.i.upstream_cx_active"] != 0 {
		t.Fatal("upstream_cx_active not back to 0")
	}
}

func TestProtocolOptionsMaxConnectionDuration(t *testing.T) {
	addr, total, _ := connCounter(t)
	m, st := testManager(t)
	c := install(t, m, st, withProtocol(t, staticCluster("d", []string{addr}), &corev3.HttpProtocolOptions{
		MaxConnectionDuration: durationpb.New(300 * time.Millisecond),
	})).Get("d")
	// Fast path: reused while young, replaced once old.
	h1Exchange(t, c, addr)
	h1Exchange(t, c, addr)
	if total.Load() != 1 {
		t.Fatalf("%d connections for two quick requests", total.Load())
	}
	time.Sleep(400 * time.Millisecond)
	h1Exchange(t, c, addr)
	if total.Load() != 2 {
		t.Fatalf("%d connections: the old one was reused past max_connection_duration", total.Load())
	}
	// net/http transport.
	get(t, c, "/")
	n := total.Load()
	get(t, c, "/")
	if total.Load() != n {
		t.Fatal("a young transport connection was not reused")
	}
	time.Sleep(400 * time.Millisecond)
	get(t, c, "/")
	if total.Load() != n+1 {
		t.Fatalf("transport: %d new connections past max_connection_duration", total.Load()-n)
	}
}

func TestProtocolOptionsValidation(t *testing.T) {
	m, st := testManager(t)
	_, err := prepare(m, st, withProtocol(t, staticCluster("v", addrs(1)), &corev3.HttpProtocolOptions{
		IdleTimeout: durationpb.New(-time.Second),
	}))
	if !errContains(err, `common_http_protocol_options.idle_timeout: duration -1s is negative`) {
		t.Fatalf("err = %v", err)
	}
	c := install(t, m, st, withProtocol(t, staticCluster("z", addrs(1)), &corev3.HttpProtocolOptions{
		IdleTimeout: durationpb.New(0),
	})).Get("z")
	if c.IdleTimeout() != 0 || c.h1.sweepEvery() != 0 || c.transport.IdleConnTimeout != 0 {
		t.Fatal("idle_timeout 0 does not disable the idle timeout")
	}
}
