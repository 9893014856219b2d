package runtime_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime"
)

func TestListenerUpdateKeepsSocketAndConnections(t *testing.T) {
	one := echoServer(t, "")
	two := echoServer(t, "two:")
	rt := newRuntime(t)
	addr := freeAddr(t)
	apply(t, rt, configOf(tcpListener(t, addr, "one"), edsCluster(t, "one", false), cla("one", one),
		edsCluster(t, "two", false), cla("two", two)))

	old := dialEcho(t, addr)
	oldR := bufio.NewReader(old)
	if got := roundTrip(t, old, oldR, "before"); got != "before" {
		t.Fatalf("echo = %q", got)
	}

	// Same address, new filter chain pointing at another cluster.
	apply(t, rt, configOf(tcpListener(t, addr, "two"), edsCluster(t, "one", false), cla("one", one),
		edsCluster(t, "two", false), cla("two", two)))

	if got := roundTrip(t, old, oldR, "after"); got != "after" {
		t.Fatalf("open connection after the update: echo = %q", got)
	}
	fresh := dialEcho(t, addr)
	if got := roundTrip(t, fresh, bufio.NewReader(fresh), "new"); got != "two:new" {
		t.Fatalf("new connection: echo = %q, want the new chain's cluster", got)
	}
	if got := rt.Stats()["listener_manager.total_listeners_active"]; got != 1 {
		t.Errorf("total_listeners_active = %d", got)
	}
}

func TestHTTPListenerUpdateKeepsKeepAliveConnection(t *testing.T) {
	a, b := idBackend(t, "a"), idBackend(t, "b")
	rt := newRuntime(t)
	addr := freeAddr(t)
	base := configOf(httpListener(t, addr, "web"), routeConfig("web", nil),
		edsCluster(t, "web", false), cla("web", a), edsCluster(t, "other", false), cla("other", b))
	apply(t, rt, base)
	client := h1Client(t)
	if _, body := get(t, client, "http://"+addr+"/"); body != "a" {
		t.Fatalf("got %q", body)
	}
	// RDS update only: the kept-alive connection follows the new routes.
	next := base.Clone()
	rc := routeConfig("web", nil)
	rc.GetVirtualHosts()[0].GetRoutes()[0].GetRoute().ClusterSpecifier = routeConfig("other", nil).GetVirtualHosts()[0].GetRoutes()[0].GetRoute().GetClusterSpecifier()
	next.Routes["outbound:web"] = rc
	apply(t, rt, next)
	if _, body := get(t, client, "http://"+addr+"/"); body != "b" {
		t.Fatalf("after the RDS update got %q, want b", body)
	}
	if got := rt.Stats()["listener."+strings.ReplaceAll(addr, ":", "_")+".downstream_cx_total"]; got != 1 {
		t.Errorf("downstream_cx_total = %d, want 1 (one kept-alive connection)", got)
	}
}

func TestRemovedListenerDrains(t *testing.T) {
	backend := echoServer(t, "")
	rt := newRuntime(t, runtime.WithDrainTimeout(300*time.Millisecond))
	addr, keep := freeAddr(t), freeAddr(t)
	cfg := configOf(tcpListener(t, addr, "echo"), tcpListener(t, keep, "echo"), edsCluster(t, "echo", false), cla("echo", backend))
	apply(t, rt, cfg)

	c := dialEcho(t, addr)
	r := bufio.NewReader(c)
	roundTrip(t, c, r, "hi")

	next := cfg.Clone()
	delete(next.Listeners, "outbound:"+addr)
	apply(t, rt, next)

	// The socket is closed at once...
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatal("the removed listener still accepts")
	}
	// ...the open connection goes on during the drain...
	if got := roundTrip(t, c, r, "draining"); got != "draining" {
		t.Fatalf("echo during drain = %q", got)
	}
	// ...and is closed when the drain timeout passes.
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadAll(r); isTimeout(err) {
		t.Fatalf("after the drain timeout: %v, want EOF or reset", err)
	}
	// The other listener is untouched.
	k := dialEcho(t, keep)
	if got := roundTrip(t, k, bufio.NewReader(k), "x"); got != "x" {
		t.Fatalf("kept listener echo = %q", got)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestRemovedHTTPListenerDrains(t *testing.T) {
	backend := idBackend(t, "a")
	rt := newRuntime(t, runtime.WithDrainTimeout(300*time.Millisecond))
	addr := freeAddr(t)
	cfg := configOf(httpListener(t, addr, "web"), routeConfig("web", nil), edsCluster(t, "web", false), cla("web", backend))
	apply(t, rt, cfg)
	get(t, h1Client(t), "http://"+addr+"/")
	apply(t, rt, configOf(edsCluster(t, "web", false), cla("web", backend)))
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatal("the removed listener still accepts")
	}
	// A listener can come back on the address right away.
	apply(t, rt, cfg)
	if resp, _ := get(t, h1Client(t), "http://"+addr+"/"); resp.StatusCode != 200 {
		t.Fatalf("re-added listener: %d", resp.StatusCode)
	}
}

func TestUnsupportedFieldRejectedAndPreviousConfigServes(t *testing.T) {
	backend := idBackend(t, "a")
	rt := newRuntime(t)
	addr := freeAddr(t)
	good := configOf(httpListener(t, addr, "web"), routeConfig("web", nil), edsCluster(t, "web", false), cla("web", backend))
	apply(t, rt, good)

	bad := good.Clone()
	l := httpListener(t, addr, "web")
	l.PerConnectionBufferLimitBytes = wrapperspb.UInt32(1024)
	bad.Listeners[l.GetName()] = l
	bad.Endpoints["web"] = cla("web") // would leave no endpoint if applied
	err := rt.Apply(context.Background(), bad)
	want := `listener "outbound:` + addr + `": field envoy.config.listener.v3.Listener.per_connection_buffer_limit_bytes is not supported by trellis-dp`
	if err == nil || err.Error() != want {
		t.Fatalf("Apply error = %v\nwant %s", err, want)
	}
	if resp, body := get(t, h1Client(t), "http://"+addr+"/"); resp.StatusCode != 200 || body != "a" {
		t.Fatalf("previous config: got %d %q", resp.StatusCode, body)
	}
	if rt.Config() != good {
		t.Error("Config() is not the last good configuration")
	}
}

func TestBindFailureChangesNothing(t *testing.T) {
	backend := echoServer(t, "")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	rt := newRuntime(t)
	addr, extra := freeAddr(t), freeAddr(t)
	good := configOf(tcpListener(t, addr, "echo"), edsCluster(t, "echo", false), cla("echo", backend))
	apply(t, rt, good)
	bad := good.Clone()
	for _, a := range []string{extra, busy.Addr().String()} {
		l := tcpListener(t, a, "echo")
		bad.Listeners[l.GetName()] = l
	}
	if err := rt.Apply(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Apply = %v, want a bind error", err)
	}
	// The listener bound before the failure was released again.
	if conn, err := net.DialTimeout("tcp", extra, time.Second); err == nil {
		conn.Close()
		t.Fatal("a listener of the rejected config accepts connections")
	}
	if got := len(rt.ListenerAddrs()); got != 1 {
		t.Fatalf("%d listeners, want 1", got)
	}
}

func TestCloseDrainsAndRejectsApply(t *testing.T) {
	backend := echoServer(t, "")
	rt := runtime.New(nil, runtime.WithDrainTimeout(200*time.Millisecond))
	addr := freeAddr(t)
	cfg := configOf(tcpListener(t, addr, "echo"), edsCluster(t, "echo", false), cla("echo", backend))
	apply(t, rt, cfg)
	c := dialEcho(t, addr)
	roundTrip(t, c, bufio.NewReader(c), "x")
	start := time.Now()
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if rt.Ready() {
		t.Error("Ready after Close")
	}
	if err := rt.Apply(context.Background(), cfg); !errors.Is(err, runtime.ErrClosed) {
		t.Fatalf("Apply after Close = %v", err)
	}
}
