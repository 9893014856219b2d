package runtime_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// dialEcho connects to addr and returns the connection.
func dialEcho(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c.(*net.TCPConn)
}

// roundTrip writes line and reads one line back.
func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, line string) string {
	t.Helper()
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	got, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return strings.TrimSuffix(got, "\n")
}

func TestTCPProxyEcho(t *testing.T) {
	backend := echoServer(t, "")
	rt := newRuntime(t)
	addr := freeAddr(t)
	apply(t, rt, configOf(tcpListener(t, addr, "echo"), edsCluster(t, "echo", false), cla("echo", backend)))
	if !rt.Ready() {
		t.Fatal("not ready after Apply")
	}

	c := dialEcho(t, addr)
	r := bufio.NewReader(c)
	if got := roundTrip(t, c, r, "hello"); got != "hello" {
		t.Fatalf("echo = %q", got)
	}
	// Half-close: the rest of the stream still comes back, then EOF.
	big := strings.Repeat("x", 1<<20)
	go func() {
		_, _ = io.WriteString(c, big)
		_ = c.CloseWrite()
	}()
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read after half-close: %v", err)
	}
	if len(rest) != len(big) {
		t.Fatalf("got %d bytes back, want %d", len(rest), len(big))
	}

	st := rt.Stats()
	for name, min := range map[string]uint64{
		"listener." + strings.ReplaceAll(addr, ":", "_") + ".downstream_cx_total": 1,
		"tcp.echo.downstream_cx_total":                                            1,
		"cluster.echo.upstream_cx_total":                                          1,
		"cluster.echo.membership_healthy":                                         1,
	} {
		if st[name] < min {
			t.Errorf("stat %s = %d, want >= %d", name, st[name], min)
		}
	}
}

func TestTCPProxyConnectFailure(t *testing.T) {
	rt := newRuntime(t)
	addr := freeAddr(t)
	dead := freeAddr(t) // nothing listens here
	apply(t, rt, configOf(tcpListener(t, addr, "dead"), edsCluster(t, "dead", false), cla("dead", dead)))
	c := dialEcho(t, addr)
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read succeeded; want the connection closed")
	}
	if got := rt.Stats()["cluster.dead.upstream_cx_connect_fail"]; got != 1 {
		t.Fatalf("upstream_cx_connect_fail = %d, want 1", got)
	}
}
