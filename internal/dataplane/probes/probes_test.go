package probes

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startProxy runs the probe proxy on a real socket.
func startProxy(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string, headers map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPProbes(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			if r.Header.Get(HeaderTimeout) != "" || r.Header.Get("X-Custom") != "yes" || r.URL.RawQuery != "full=1" {
				http.Error(w, "headers not passed right: "+r.Header.Get("X-Custom")+" "+r.URL.RawQuery, http.StatusTeapot)
				return
			}
			_, _ = io.WriteString(w, "healthy")
		case "/slow":
			time.Sleep(3 * time.Second)
		default:
			http.Error(w, "down", http.StatusInternalServerError)
		}
	}))
	defer app.Close()
	tlsApp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "tls ok") }))
	defer tlsApp.Close()
	proxy := startProxy(t)
	port, tlsPort := portOf(t, app.Listener.Addr().String()), portOf(t, tlsApp.Listener.Addr().String())

	for _, tc := range []struct {
		path    string
		headers map[string]string
		code    int
		body    string
	}{
		{"/" + port + "/healthz?full=1", map[string]string{"X-Custom": "yes", HeaderTimeout: "2"}, 200, "healthy"},
		{"/" + port + "/broken", nil, 500, "down"},
		{"/" + port + "/slow", map[string]string{HeaderTimeout: "1"}, 504, ""},
		{"/" + tlsPort + "/", map[string]string{HeaderScheme: "HTTPS"}, 200, "tls ok"},
		{"/" + port + "/x", map[string]string{HeaderTimeout: "soon"}, 400, HeaderTimeout},
		{"/", nil, 400, "want /<port>/<path>"},
		{"/abc/healthz", nil, 400, `port "abc"`},
		{"/70000/healthz", nil, 400, `port "70000"`},
		{"/0/healthz", nil, 400, `port "0"`},
		{"/tcp/", nil, 400, "tcp probe"},
		{"/grpc/x", nil, 400, "grpc probe"},
	} {
		code, body := get(t, proxy+tc.path, tc.headers)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s: %d %q, want %d with %q", tc.path, code, body, tc.code, tc.body)
		}
	}
}

func TestTCPAndGRPCProbes(t *testing.T) {
	open, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := portOf(t, open.Addr().String())
	open.Close() // a port nobody listens on any more

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("payments", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()
	gport := portOf(t, ln.Addr().String())
	proxy := startProxy(t)

	for _, tc := range []struct {
		path    string
		headers map[string]string
		code    int
	}{
		{"/tcp/" + gport, nil, 200},
		{"/tcp/" + closed, nil, 503},
		{"/grpc/" + gport, nil, 200},
		{"/grpc/" + gport, map[string]string{HeaderGRPCService: "payments"}, 503},
		{"/grpc/" + gport, map[string]string{HeaderGRPCService: "unknown"}, 503},
		{"/grpc/" + closed, map[string]string{HeaderTimeout: "1"}, 503},
	} {
		if code, body := get(t, proxy+tc.path, tc.headers); code != tc.code {
			t.Errorf("GET %s %v: %d %q, want %d", tc.path, tc.headers, code, body, tc.code)
		}
	}
}
