package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The frontend (this test) reaches services through its sidecar's
// outbound listeners, and each service through its own sidecar's inbound:
// HTTP/1.1, HTTP/2, gRPC and raw TCP.
func TestDataPathProtocols(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})

	web := startHTTPApp(t, "web-1")
	h2 := startHTTPApp(t, "h2-1")
	echo := startEchoApp(t, "echo-1")
	gl, _ := net.Listen("tcp", "127.0.0.1:0")
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("greeter", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(gl)
	t.Cleanup(gs.Stop)

	startDP(t, cp, "web-1", serviceDP(t, "web-1", "web", "http", web.port))
	startDP(t, cp, "h2-1", serviceDP(t, "h2-1", "h2", "http2", h2.port))
	startDP(t, cp, "echo-1", serviceDP(t, "echo-1", "echo", "tcp", echo))
	startDP(t, cp, "greeter-1", serviceDP(t, "greeter-1", "greeter", "grpc", gl.Addr().(*net.TCPAddr).Port))
	webOut, h2Out, echoOut, grpcOut := freePort(t), freePort(t), freePort(t), freePort(t)
	startDP(t, cp, "frontend-1", clientDP(t, "frontend-1", map[int]string{webOut: "web", h2Out: "h2", echoOut: "echo", grpcOut: "greeter"}))

	t.Run("http1", func(t *testing.T) {
		c := newClient()
		eventually(t, 5*time.Second, "HTTP/1.1 through the mesh", func() error {
			inst, err := get(c, fmt.Sprintf("http://127.0.0.1:%d/hello", webOut))
			if err == nil && inst != "web-1" {
				err = fmt.Errorf("answered by %q", inst)
			}
			return err
		})
	})
	t.Run("http2", func(t *testing.T) {
		protocols := new(http.Protocols)
		protocols.SetUnencryptedHTTP2(true)
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Protocols: protocols}}
		eventually(t, 5*time.Second, "HTTP/2 through the mesh", func() error {
			resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", h2Out))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var v struct{ Instance, Proto string }
			if err := decodeJSON(resp, &v); err != nil {
				return err
			}
			if resp.ProtoMajor != 2 || v.Proto != "HTTP/2.0" || v.Instance != "h2-1" {
				return fmt.Errorf("client proto %s, backend saw %s from %s", resp.Proto, v.Proto, v.Instance)
			}
			return nil
		})
	})
	t.Run("grpc", func(t *testing.T) {
		conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", grpcOut), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		eventually(t, 5*time.Second, "gRPC through the mesh", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "greeter"})
			if err != nil {
				return err
			}
			if resp.Status != healthpb.HealthCheckResponse_SERVING {
				return fmt.Errorf("status %v", resp.Status)
			}
			return nil
		})
	})
	t.Run("tcp", func(t *testing.T) {
		eventually(t, 5*time.Second, "TCP through the mesh", func() error {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", echoOut), 2*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Second))
			fmt.Fprintf(c, "ping\n")
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				return err
			}
			if line != "echo-1:ping\n" {
				return fmt.Errorf("got %q", line)
			}
			return nil
		})
	})
}

func decodeJSON(resp *http.Response, v any) error {
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return jsonDecode(resp, v)
}

// spread sends n requests and counts answers per instance.
func spread(c *http.Client, url string, n int) (map[string]int, error) {
	seen := map[string]int{}
	for range n {
		inst, err := get(c, url)
		if err != nil {
			return seen, err
		}
		seen[inst]++
	}
	return seen, nil
}

// Backend scaled from 1 to 3: requests spread over all three within 2 s of
// the third registering; an instance stopped takes no traffic once its
// proxy has disconnected.
func TestScaleOutAndStopAnInstance(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})
	out := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", out)
	b1 := startHTTPApp(t, "backend-1")
	startDP(t, cp, "backend-1", serviceDP(t, "backend-1", "backend", "http", b1.port))
	// The frontend's proxy uses incremental (delta) xDS; the others the
	// state of the world.
	startDP(t, cp, "frontend-1", clientDP(t, "frontend-1", map[int]string{out: "backend"}), "--xds-mode", "delta")
	c := newClient()
	eventually(t, 5*time.Second, "the first backend", func() error {
		seen, err := spread(c, url, 5)
		if err == nil && seen["backend-1"] != 5 {
			err = fmt.Errorf("answers %v", seen)
		}
		return err
	})

	b2 := startHTTPApp(t, "backend-2")
	dp2 := startDP(t, cp, "backend-2", serviceDP(t, "backend-2", "backend", "http", b2.port))
	b3 := startHTTPApp(t, "backend-3")
	startDP(t, cp, "backend-3", serviceDP(t, "backend-3", "backend", "http", b3.port))
	registered := time.Now()
	eventually(t, 2*time.Second, "requests spread over three instances", func() error {
		seen, err := spread(c, url, 30)
		if err == nil && len(seen) != 3 {
			err = fmt.Errorf("answers %v", seen)
		}
		return err
	})
	t.Logf("spread over 3 instances %s after the third registered", time.Since(registered).Round(time.Millisecond))

	// Stop backend-2: its app and its proxy.
	b2.srv.Close()
	dp2.Stop()
	eventually(t, 5*time.Second, "backend-2 shown offline", func() error {
		if s := lastSubscription(overview(t, cp, "backend-2")); s == nil || s["disconnectTime"] == nil {
			return fmt.Errorf("subscription %v", s)
		}
		return nil
	})
	eventually(t, 3*time.Second, "traffic to leave backend-2", func() error {
		seen, err := spread(c, url, 20)
		if err == nil && seen["backend-2"] > 0 {
			err = fmt.Errorf("answers %v", seen)
		}
		return err
	})
	seen, err := spread(c, url, 100)
	if err != nil || seen["backend-2"] > 0 || seen["backend-1"] == 0 || seen["backend-3"] == 0 {
		t.Fatalf("after backend-2 left: %v, err %v", seen, err)
	}
}

// Control plane killed: traffic keeps flowing on the last config for 60 s
// with zero failed requests; control plane back: the next change (a new
// backend instance) reaches the proxies.
func TestControlPlaneOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("60 s outage test skipped in -short mode")
	}
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "sqlite"})
	out := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", out)
	b1 := startHTTPApp(t, "backend-1")
	startDP(t, cp, "backend-1", serviceDP(t, "backend-1", "backend", "http", b1.port))
	startDP(t, cp, "frontend-1", clientDP(t, "frontend-1", map[int]string{out: "backend"}))
	c := newClient()
	eventually(t, 5*time.Second, "traffic before the outage", func() error { _, err := get(c, url); return err })

	cp.stopped = true
	_ = cp.cmd.Process.Signal(syscall.SIGKILL)
	_ = cp.cmd.Wait()

	var sent, failed atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				sent.Add(1)
				if _, err := get(c, url); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("during the 60 s outage: %d requests, %d failed", sent.Load(), failed.Load())
	if failed.Load() > 0 || sent.Load() < 1000 {
		t.Fatalf("%d of %d requests failed while the control plane was down (first: %v)", failed.Load(), sent.Load(), firstErr.Load())
	}

	cp.start()
	b2 := startHTTPApp(t, "backend-2")
	startDP(t, cp, "backend-2", serviceDP(t, "backend-2", "backend", "http", b2.port))
	eventually(t, 60*time.Second, "the new instance to reach the frontend's proxy after the control plane came back", func() error {
		seen, err := spread(c, url, 20)
		if err == nil && seen["backend-2"] == 0 {
			err = fmt.Errorf("answers %v", seen)
		}
		return err
	})
}

// A config the proxy cannot run is NACKed: the proxy keeps serving the old
// one, and the NACK shows in the API.
func TestNACKKeepsTheOldConfig(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory", "TRELLIS_DP_SERVER_TEST_HOOKS": "true"})
	out := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", out)
	b1 := startHTTPApp(t, "backend-1")
	startDP(t, cp, "backend-1", serviceDP(t, "backend-1", "backend", "http", b1.port))
	startDP(t, cp, "frontend-1", clientDP(t, "frontend-1", map[int]string{out: "backend"}))
	c := newClient()
	eventually(t, 5*time.Second, "traffic before the bad config", func() error { _, err := get(c, url); return err })

	req, _ := http.NewRequest(http.MethodPut, cp.URL+"/_testhooks/meshes/default/dataplanes/frontend-1/corrupt", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("test hook: %v %v", resp, err)
	}
	eventually(t, 10*time.Second, "the NACK in the API", func() error {
		s := lastSubscription(overview(t, cp, "frontend-1"))
		status, _ := s["status"].(map[string]any)
		nack, _ := status["lastNack"].(map[string]any)
		if msg, _ := nack["error"].(string); !strings.Contains(msg, "per_connection_buffer_limit_bytes") {
			return fmt.Errorf("status %v", status)
		}
		return nil
	})
	for range 20 {
		if _, err := get(c, url); err != nil {
			t.Fatalf("traffic failed after the NACK: %v", err)
		}
	}
	out2, _, err := cp.ctl("", "inspect", "dataplanes")
	if err != nil || !strings.Contains(out2, "listener \"inbound:") {
		t.Errorf("trellisctl inspect dataplanes does not show the NACK: %v\n%s", err, out2)
	}
}
