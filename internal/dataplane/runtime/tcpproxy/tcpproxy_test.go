package tcpproxy_test

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/cluster"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/secret"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/tcpproxy"
)

// staticCluster builds a STATIC cluster "c" with the given endpoints.
func staticCluster(t *testing.T, addrs ...string) *cluster.Cluster {
	t.Helper()
	lle := &endpointv3.LocalityLbEndpoints{}
	for _, a := range addrs {
		ap := netip.MustParseAddrPort(a)
		lle.LbEndpoints = append(lle.LbEndpoints, &endpointv3.LbEndpoint{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: &corev3.Address{
				Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: ap.Addr().String(), PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(ap.Port())}}}}}},
		})
	}
	def := &clusterv3.Cluster{
		Name:                 "c",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(time.Second),
		LoadAssignment:       &endpointv3.ClusterLoadAssignment{ClusterName: "c", Endpoints: []*endpointv3.LocalityLbEndpoints{lle}},
	}
	st := stats.NewStore()
	plan, err := cluster.NewManager(st, secret.NewStore()).Prepare(map[string]*clusterv3.Cluster{"c": def}, nil, st)
	if err != nil {
		t.Fatal(err)
	}
	plan.Commit(0)
	return plan.Get("c")
}

// echoServer echoes every connection until it closes.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// frontend serves p on a loopback listener and returns its address and
// a channel that receives when a session ended.
func frontend(t *testing.T, p *tcpproxy.Proxy) (string, chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				p.Serve(c)
				done <- struct{}{}
			}()
		}
	}()
	return ln.Addr().String(), done
}

func build(t *testing.T, cfg *tcpproxyv3.TcpProxy, c *cluster.Cluster, reg stats.Registry) *tcpproxy.Proxy {
	t.Helper()
	cfg.StatPrefix = "test"
	cfg.ClusterSpecifier = &tcpproxyv3.TcpProxy_Cluster{Cluster: "c"}
	p, err := tcpproxy.Build(cfg, func(string) *cluster.Cluster { return c }, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo %q: got %q, %v", msg, buf, err)
	}
}

func TestIdleTimeoutCloses(t *testing.T) {
	reg := stats.NewStore()
	const idle = 300 * time.Millisecond
	p := build(t, &tcpproxyv3.TcpProxy{IdleTimeout: durationpb.New(idle)}, staticCluster(t, echoServer(t)), reg)
	addr, done := frontend(t, p)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Traffic more often than the timeout keeps the session open well
	// past it.
	start := time.Now()
	var quiet time.Time
	for i := range 8 {
		time.Sleep(idle / 3)
		echo(t, c, "ping"+strconv.Itoa(i))
		quiet = time.Now()
	}
	if time.Since(start) < 2*idle {
		t.Fatal("the loop was too fast to test anything")
	}
	// Then silence: the proxy closes the downstream connection.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after silence: %d, %v; want the connection closed", n, err)
	}
	if waited := time.Since(quiet); waited < idle*9/10 {
		t.Errorf("closed after %v of silence, before the idle timeout %v", waited, idle)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("session did not end")
	}
	if got := reg.Counter("tcp.test.idle_timeout").Value(); got != 1 {
		t.Errorf("tcp.test.idle_timeout = %d, want 1", got)
	}
}

func TestIdleTimeoutZeroDisables(t *testing.T) {
	p := build(t, &tcpproxyv3.TcpProxy{IdleTimeout: durationpb.New(0)}, staticCluster(t, echoServer(t)), stats.NewStore())
	addr, _ := frontend(t, p)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo(t, c, "a")
	time.Sleep(200 * time.Millisecond)
	echo(t, c, "b")
}

func TestMaxConnectAttempts(t *testing.T) {
	live := echoServer(t)
	dead := deadAddr(t)
	// One attempt: round robin over a dead and a live endpoint fails
	// every other connection.
	c1 := staticCluster(t, dead, live)
	p1 := build(t, &tcpproxyv3.TcpProxy{}, c1, stats.NewStore())
	addr1, _ := frontend(t, p1)
	failed := 0
	for range 4 {
		if !tryEcho(t, addr1) {
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("1 attempt: %d of 4 connections failed, want 2", failed)
	}
	// Two attempts: the live endpoint is reached after the dead one.
	c2 := staticCluster(t, dead, live)
	p2 := build(t, &tcpproxyv3.TcpProxy{MaxConnectAttempts: wrapperspb.UInt32(2)}, c2, stats.NewStore())
	addr2, _ := frontend(t, p2)
	for i := range 4 {
		if !tryEcho(t, addr2) {
			t.Fatalf("2 attempts: connection %d failed", i)
		}
	}
	if got := c2.Stats().CxConnectFail.Value(); got == 0 {
		t.Error("upstream_cx_connect_fail = 0: the dead endpoint was never tried")
	}
}

// tryEcho reports whether a connection through addr echoes.
func tryEcho(t *testing.T, addr string) bool {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "x"); err != nil {
		return false
	}
	b := make([]byte, 1)
	_, err = io.ReadFull(c, b)
	return err == nil && b[0] == 'x'
}

func TestBuildRejects(t *testing.T) {
	_, err := tcpproxy.Build(&tcpproxyv3.TcpProxy{StatPrefix: "x", ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: "c"},
		MaxConnectAttempts: wrapperspb.UInt32(0)}, func(string) *cluster.Cluster { return nil }, stats.NewStore(), slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("max_connect_attempts 0 accepted")
	}
}
