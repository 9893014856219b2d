// Package apiserver serves Trellis's REST API, compatible with Kuma 2.14's
// Universal API: resource CRUD and lists under Kuma's paths, /_resources,
// the std-errors JSON, and the health endpoints.
package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/trellis-mesh/trellis/internal/cpmetrics"
	"github.com/trellis-mesh/trellis/internal/gui"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/resource"
)

// MaxBodyBytes is the largest request body accepted (1 MiB).
const MaxBodyBytes = 1 << 20

// Info is what GET / reports about this control plane.
type Info struct {
	Version    string
	InstanceID string
	ClusterID  string
	// Mode is "standalone" (when empty), "global" or "zone" (zones.go).
	Mode string
	// Zone is the zone's name in zone mode.
	Zone string
}

// ReadyFunc reports whether the control plane is ready to serve; nil means ready.
type ReadyFunc func(ctx context.Context) error

// Server is the REST API.
type Server struct {
	mgr    *manager.Manager
	reg    *resource.Registry
	info   Info
	ready  ReadyFunc
	log    *slog.Logger
	extras []route
	// authn is nil when authentication is off (see UseAuthn).
	authn *Authn
	// metrics, when set, times every request (insights_apimetrics.go).
	metrics *cpmetrics.Metrics
	// mode is the control plane's mode (ownership.go).
	mode string
}

type route struct {
	pattern string
	handler http.Handler
}

// New returns an API server over mgr. ready may be nil.
func New(mgr *manager.Manager, info Info, ready ReadyFunc, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{mgr: mgr, reg: mgr.Registry(), info: info, ready: ready, log: log}
}

// Handle mounts an extra handler (inspect endpoints, GUI, metrics) on the
// API's mux. Call before Handler.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.extras = append(s.extras, route{pattern, h})
}

// Handler returns the API's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /_resources", s.resources)
	mux.HandleFunc("GET /ready", s.readyz)
	mux.HandleFunc("GET /healthy", s.healthz)

	mux.HandleFunc("GET /meshes/{mesh}/{path}", s.listInMesh)
	mux.HandleFunc("GET /meshes/{mesh}/{path}/{name}", s.getInMesh)
	mux.HandleFunc("PUT /meshes/{mesh}/{path}/{name}", s.putInMesh)
	mux.HandleFunc("DELETE /meshes/{mesh}/{path}/{name}", s.deleteInMesh)

	mux.HandleFunc("GET /{path}", s.listAll)
	mux.HandleFunc("GET /{path}/{name}", s.getGlobal)
	mux.HandleFunc("PUT /{path}/{name}", s.putGlobal)
	mux.HandleFunc("DELETE /{path}/{name}", s.deleteGlobal)
	if s.authn != nil {
		mux.HandleFunc("POST /tokens/user", s.issueUserToken)
	}
	for _, r := range s.extras {
		mux.Handle(r.pattern, r.handler)
	}
	// The GUI's files (package gui) answer without authentication: they
	// hold no data, and the API calls the GUI makes are authenticated
	// like any other.
	root := http.NewServeMux()
	ui := gui.MustNew()
	root.Handle("/gui", ui)
	root.Handle(gui.Prefix, ui)
	root.Handle("/", s.authenticate(mux))
	return s.middleware(root)
}

// middleware logs requests, caps bodies and turns panics into 500s.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("API handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				writeError(sw, http.StatusInternalServerError, "Internal Server Error", "the control plane hit an internal error; see its log")
			}
			s.log.Debug("API request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start))
		}()
		if r.Body != nil {
			r.Body = http.MaxBytesReader(sw, r.Body, MaxBodyBytes)
		}
		next.ServeHTTP(sw, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	hostname, _ := os.Hostname()
	writeJSON(w, http.StatusOK, s.withMode(map[string]string{
		"hostname":    hostname,
		"tagline":     "Trellis",
		"product":     "Trellis",
		"version":     s.info.Version,
		"basedOnKuma": KumaCompatVersion,
		"instanceId":  s.info.InstanceID,
		"clusterId":   s.info.ClusterID,
		"gui":         "The gui is available at " + gui.Prefix,
	}))
}

// KumaCompatVersion is the Kuma release whose API Trellis follows.
const KumaCompatVersion = "2.14.3"

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.ready != nil {
		if err := s.ready(r.Context()); err != nil {
			writeError(w, http.StatusServiceUnavailable, "Not ready", err.Error())
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok\n"))
}

// Serve runs the API on ln until ctx ends, then shuts down within grace.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	srv := &http.Server{Handler: s.instrumented(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: s.errorLog()}
	return serveUntil(ctx, srv, func() error { return srv.Serve(ln) }, grace)
}

// ServeTLS runs the API over TLS (HTTP/1.1 and HTTP/2) on ln with the
// certificate of tlsCfg until ctx ends, then shuts down within grace.
func (s *Server) ServeTLS(ctx context.Context, ln net.Listener, tlsCfg *tls.Config, grace time.Duration) error {
	srv := &http.Server{Handler: s.instrumented(), ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsCfg, ErrorLog: s.errorLog()}
	return serveUntil(ctx, srv, func() error { return srv.ServeTLS(ln, "", "") }, grace)
}

// LoadTLSConfig reads a PEM certificate and key into a server TLS config
// (TLS 1.2 or later).
func LoadTLSConfig(certFile, keyFile string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the API certificate %s: %w", certFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// errorLog sends net/http's own messages (TLS handshake errors from
// clients that speak plain HTTP to the HTTPS port, say) to the debug log.
func (s *Server) errorLog() *log.Logger {
	return slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
}

func serveUntil(ctx context.Context, srv *http.Server, serve func() error, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
