// Package admin is trellis-dp's admin HTTP server, shaped after Envoy's so
// the same tools and habits work: /ready, /config_dump, /stats,
// /stats/prometheus and /quitquitquit, plus Go's /debug/pprof/ profiles
// when enabled. It reads the proxy's state through small interfaces and
// never changes it, except that /quitquitquit asks the process to shut
// down.
package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// DefaultAddress is where the admin server listens unless told otherwise.
const DefaultAddress = "127.0.0.1:9901"

// ConfigSource is the accepted xDS configuration, for /config_dump. The
// xDS client implements it.
type ConfigSource interface {
	// AcceptedConfig returns the Config in use; the caller does not
	// modify it.
	AcceptedConfig() *xdsconfig.Config
	// ResourceStatus returns the version of an accepted resource and
	// when it last changed.
	ResourceStatus(typeURL, name string) (version string, lastUpdated time.Time)
}

// StatsSource provides counters and gauges by Envoy-style dotted name
// (cluster.backend.upstream_rq_total). The xDS client and the runtime
// implement it.
type StatsSource interface {
	Stats() map[string]uint64
}

// TextReadoutSource is optionally implemented by a StatsSource with
// string-valued state (versions, the last error); /stats shows those as
// Envoy shows its text readouts.
type TextReadoutSource interface {
	TextReadouts() map[string]string
}

// Options configures a Server.
type Options struct {
	// Config feeds /config_dump; required.
	Config ConfigSource
	// Stats feed /stats.
	Stats []StatsSource
	// Metrics feeds /stats/prometheus (its Families); the server adds its
	// own process gauges (server.*) to it as a collector.
	Metrics *stats.Store
	// MeshMetric, when set, answers the requests to /stats/prometheus that
	// carry ?meshmetric=<listener>: the MeshMetric listener's route rewrites
	// its path to that (internal/dataplane/metrics).
	MeshMetric http.Handler
	// Ready reports whether the first configuration was applied.
	Ready func() bool
	// Quit is called once, on the first POST /quitquitquit.
	Quit func()
	// Bootstrap, when set, is shown first in /config_dump.
	Bootstrap *bootstrapv3.Bootstrap
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// EnableProfiling serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/. Off by default: a CPU profile costs CPU, and the
	// admin address may be reachable by more than the operator.
	EnableProfiling bool
}

// Server is the admin HTTP server.
type Server struct {
	opts     Options
	log      *slog.Logger
	started  time.Time
	draining atomic.Bool
	quitOnce sync.Once
	http     *http.Server
}

// New returns a Server; start it with Serve.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Ready == nil {
		opts.Ready = func() bool { return false }
	}
	s := &Server{opts: opts, log: opts.Logger.With("component", "admin"), started: time.Now()}
	if opts.Metrics != nil {
		opts.Metrics.AddCollector(serverCollector{s})
	}
	s.http = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return s
}

// Handler returns the admin endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /ready", s.ready)
	mux.HandleFunc("GET /config_dump", s.configDump)
	mux.HandleFunc("GET /stats", s.stats)
	mux.HandleFunc("GET /stats/prometheus", s.prometheus)
	mux.HandleFunc("POST /quitquitquit", s.quit)
	if s.opts.EnableProfiling {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Serve serves on ln until Shutdown; it returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.log.Info("admin server listening", "address", ln.Addr().String())
	if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin server: %w", err)
	}
	return nil
}

// SetDraining makes /ready answer 503 DRAINING: the proxy is shutting
// down and should get no new traffic.
func (s *Server) SetDraining() { s.draining.Store(true) }

// Shutdown stops the server, letting requests in flight finish until ctx
// ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.http.Shutdown(ctx); err != nil {
		return fmt.Errorf("admin server shutdown: %w", err)
	}
	return nil
}

// ready answers 200 LIVE once the first configuration is in, else 503 and
// the state, as Envoy's /ready does.
func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case s.draining.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "DRAINING\n")
	case s.opts.Ready():
		_, _ = io.WriteString(w, "LIVE\n")
	default:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "INITIALIZING\n")
	}
}

// quit begins a graceful shutdown.
func (s *Server) quit(w http.ResponseWriter, _ *http.Request) {
	s.quitOnce.Do(func() {
		s.log.Info("shutdown requested over /quitquitquit")
		s.SetDraining()
		if s.opts.Quit != nil {
			s.opts.Quit()
		}
	})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "OK\n")
}

func (s *Server) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, `trellis-dp admin commands:
  /config_dump        the configuration accepted from the control plane (envoy.admin.v3.ConfigDump)
  /ready              LIVE once the first configuration is applied
  /stats              counters and gauges, "name: value"
  /stats/prometheus   the same, in the Prometheus text format
  /quitquitquit       POST: drain and exit
`)
	if s.opts.EnableProfiling {
		_, _ = io.WriteString(w, "  /debug/pprof/       Go runtime profiles (--enable-pprof)\n")
	}
}
