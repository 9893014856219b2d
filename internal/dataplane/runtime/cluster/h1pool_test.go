package cluster

import (
	"net"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/secret"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// acceptAll accepts connections on a loopback port and hands them over.
func acceptAll(t *testing.T) (string, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ch <- c
		}
	}()
	return ln.Addr().String(), ch
}

func testCluster(t *testing.T) *Cluster {
	t.Helper()
	def := &clusterv3.Cluster{
		Name:                 "c",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(time.Second),
	}
	c, err := newCluster("c", def, stats.NewStore(), secret.NewStore())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestH1PoolReusesAndExpires(t *testing.T) {
	addr, accepted := acceptAll(t)
	c := testCluster(t)
	pc, err := c.GetH1(addr, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	<-accepted
	if pc.Reused() {
		t.Error("a new connection says it was reused")
	}
	c.PutH1(pc)
	again, err := c.GetH1(addr, time.Time{})
	if err != nil || again != pc || !again.Reused() {
		t.Fatalf("got %p (reused %v), %v; want the pooled connection back", again, again.Reused(), err)
	}
	c.PutH1(again)
	if got := c.stats.CxActive.Value(); got != 1 {
		t.Errorf("upstream_cx_active = %d, want 1", got)
	}

	// The janitor closes connections idle for longer than the timeout.
	again.idleSince = time.Now().Add(-idleConnTimeout)
	c.h1.sweep()
	if got := c.stats.CxActive.Value(); got != 0 {
		t.Errorf("after the sweep: upstream_cx_active = %d, want 0", got)
	}
	if pc, _ := c.GetH1(addr, time.Time{}); pc == again {
		t.Error("an expired connection was reused")
	}
}

func TestH1PoolProbesIdleConnections(t *testing.T) {
	addr, accepted := acceptAll(t)
	c := testCluster(t)
	pc, err := c.GetH1(addr, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	c.PutH1(pc)
	// The upstream closes the idle connection; once it has been idle long
	// enough to be probed, it is not handed out again.
	server.Close()
	time.Sleep(50 * time.Millisecond)
	pc.idleSince = time.Now().Add(-2 * probeAfter)
	next, err := c.GetH1(addr, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if next == pc || next.Reused() {
		t.Fatal("a connection closed by the upstream was reused")
	}
	<-accepted
}

func TestH1PoolClosedByRetire(t *testing.T) {
	addr, accepted := acceptAll(t)
	c := testCluster(t)
	a, _ := c.GetH1(addr, time.Time{})
	b, _ := c.GetH1(addr, time.Time{})
	<-accepted
	<-accepted
	c.PutH1(a)
	c.closeIdle() // the cluster is retired while b is in use
	c.PutH1(b)
	if got := c.stats.CxActive.Value(); got != 0 {
		t.Errorf("upstream_cx_active = %d, want 0: idle and returned connections of a retired cluster close", got)
	}
}
