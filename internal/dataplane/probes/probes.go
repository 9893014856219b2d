// Package probes is trellis-dp's application probe proxy (Kuma's
// Application Probe Proxy): the Kubernetes injector points the application
// containers' probes at it, and it runs them against the application on
// 127.0.0.1, past the transparent proxy's inbound redirection:
//
//	GET /<port>/<path>  → GET http://127.0.0.1:<port>/<path> (HTTPS when the
//	                      header x-kuma-probes-scheme says so); the status is
//	                      the application's
//	GET /tcp/<port>     → a TCP connection to 127.0.0.1:<port>: 200, else 503
//	GET /grpc/<port>    → grpc.health.v1.Health/Check of the service in
//	                      x-kuma-probes-grpc-service: 200 when SERVING, else 503
//
// x-kuma-probes-timeout (seconds) bounds each probe (default 1 s, the
// kubelet's). A path of any other form is 400; the proxy never follows it
// anywhere but 127.0.0.1.
package probes

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Headers the injector sets on rewritten probes.
const (
	HeaderScheme      = "x-kuma-probes-scheme"
	HeaderTimeout     = "x-kuma-probes-timeout"
	HeaderGRPCService = "x-kuma-probes-grpc-service"
)

// DefaultPort is the probe proxy's port the injector uses by default.
const DefaultPort = 9001

const (
	defaultTimeout = time.Second
	maxTimeout     = 5 * time.Minute
	maxBody        = 10 << 10 // what the kubelet reads of a probe's answer
)

// Handler serves the rewritten probes.
type Handler struct {
	// Host is the application's address; empty means 127.0.0.1.
	Host string
	// Logger logs failed probes at debug level; nil logs nothing.
	Logger *slog.Logger
}

// ServeHTTP runs one probe.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "probes are GET requests", http.StatusMethodNotAllowed)
		return
	}
	timeout, err := parseTimeout(r.Header.Get(HeaderTimeout))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	first, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch first {
	case "tcp", "grpc":
		port, err := parsePort(rest)
		if err != nil {
			http.Error(w, fmt.Sprintf("%s probe: %v", first, err), http.StatusBadRequest)
			return
		}
		if first == "tcp" {
			err = h.tcp(ctx, port)
		} else {
			err = h.grpc(ctx, port, r.Header.Get(HeaderGRPCService))
		}
		if err != nil {
			h.debug("probe failed", "kind", first, "port", port, "error", err)
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "OK\n")
	default:
		port, err := parsePort(first)
		if err != nil {
			http.Error(w, "want /<port>/<path>, /tcp/<port> or /grpc/<port>: "+err.Error(), http.StatusBadRequest)
			return
		}
		h.http(ctx, w, r, port, "/"+rest)
	}
}

func (h *Handler) host() string {
	if h.Host == "" {
		return "127.0.0.1"
	}
	return h.Host
}

func (h *Handler) debug(msg string, args ...any) {
	if h.Logger != nil {
		h.Logger.Debug(msg, args...)
	}
}

// parsePort reads a port number 1–65535.
func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q: must be a number in [1, 65535]", s)
	}
	return n, nil
}

// parseTimeout reads x-kuma-probes-timeout, whole seconds.
func parseTimeout(s string) (time.Duration, error) {
	if s == "" {
		return defaultTimeout, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("header %s %q: want a whole number of seconds ≥ 1", HeaderTimeout, s)
	}
	return min(time.Duration(n)*time.Second, maxTimeout), nil
}

// probeClient runs HTTP probes; it does not verify certificates (as the
// kubelet's HTTPS probes do not) and keeps no idle connections.
var probeClient = &http.Client{Transport: &http.Transport{
	TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the kubelet does not verify probe certificates either
	DisableKeepAlives: true,
	Proxy:             nil,
}}

// http forwards an HTTP probe and passes the application's status and the
// start of its body.
func (h *Handler) http(ctx context.Context, w http.ResponseWriter, r *http.Request, port int, path string) {
	scheme := "http"
	if strings.EqualFold(r.Header.Get(HeaderScheme), "https") {
		scheme = "https"
	}
	target := scheme + "://" + net.JoinHostPort(h.host(), strconv.Itoa(port)) + path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		http.Error(w, "probe path: "+err.Error(), http.StatusBadRequest)
		return
	}
	for k, vs := range r.Header {
		if !strings.HasPrefix(strings.ToLower(k), "x-kuma-probes-") {
			req.Header[k] = vs
		}
	}
	if r.Host != "" && r.Header.Get("Host") == "" && !isProxyHost(r.Host) {
		req.Host = r.Host // a probe's own Host header
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		h.debug("probe failed", "kind", "http", "target", target, "error", err)
		status := http.StatusServiceUnavailable
		if errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		http.Error(w, err.Error(), status)
		return
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, maxBody))
}

// isProxyHost reports whether host is the probe proxy's own address (what
// the kubelet sends when the probe sets no Host header): an IP with a port.
func isProxyHost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	return err == nil && net.ParseIP(h) != nil
}

func (h *Handler) tcp(ctx context.Context, port int) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(h.host(), strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return c.Close()
}

func (h *Handler) grpc(ctx context.Context, port int, service string) error {
	conn, err := grpc.NewClient(net.JoinHostPort(h.host(), strconv.Itoa(port)),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return fmt.Errorf("gRPC health check: %w", err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("gRPC health check: %s", s)
	}
	return nil
}

// Serve runs the probe proxy on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	srv := &http.Server{Handler: &Handler{Logger: log}, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("probe proxy: %w", err)
	}
	return nil
}
