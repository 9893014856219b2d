// Package server is the control plane's data-plane server: ADS over gRPC
// (state of the world and incremental, through go-control-plane) and
// POST /bootstrap on one TLS port. It registers the Dataplanes proxies
// present, records their insights (connected, ACKs, NACKs), removes
// proxy-registered Dataplanes a while after their proxy leaves, and
// recomputes proxies' xDS when the store changes (event driven, debounced,
// pushed only when a proxy's output changed).
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/service/metrics/v3"

	"github.com/trellis-mesh/trellis/internal/ca"
	"github.com/trellis-mesh/trellis/internal/cpmetrics"
	"github.com/trellis-mesh/trellis/internal/cpmetrics/proxystats"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/tokens"
	"github.com/trellis-mesh/trellis/internal/vip"
)

// connectTimeoutToCP is the connect timeout of the bootstrap's ads_cluster.
const connectTimeoutToCP = 5 * time.Second

// Config configures the data-plane server.
type Config struct {
	// Address to listen on (host:port).
	Address string
	// CertFile and KeyFile hold the server's TLS certificate.
	CertFile, KeyFile string
	// AdvertisedAddress is the host:port proxies use to reach this server,
	// written into bootstraps; empty means the listener's address (with
	// 127.0.0.1 for an unspecified host).
	AdvertisedAddress string
	// InstanceID names this control-plane instance in insights.
	InstanceID string
	// DeregistrationDelay is how long after its proxy disconnects a
	// proxy-registered Dataplane is removed.
	DeregistrationDelay time.Duration
	// Debounce batches store changes for this long before recomputing.
	Debounce time.Duration
	// SingleInstance says no other control plane shares the store, so
	// insights left "online" by a previous run are stale and closed at start.
	SingleInstance bool
	// Authn is how proxies authenticate: AuthnDPToken (also when empty) or
	// AuthnNone.
	Authn string
	// Zone is this control plane's zone (empty when standalone): proxies
	// without a kuma.io/zone tag and ingresses without a zone are in it
	// (zoneproxy.go).
	Zone string
	// SyncedCA says the meshes' CA secrets come from elsewhere (a zone
	// control plane gets them from the global): the server never creates
	// a builtin CA, so a zone cannot issue certificates from a CA of its
	// own in the moment between a Mesh's sync and its CA's.
	SyncedCA bool
	// VIPs configures the services' virtual IPs and DNS names (the
	// dnsServer settings); the zero value takes Kuma's defaults.
	VIPs vip.Config
	// Metrics receives the xDS metrics; nil records none.
	Metrics *cpmetrics.Metrics
	// ProxyStats keeps the metrics proxies stream (metricsservice.go); nil
	// drops them.
	ProxyStats *proxystats.Store
	// StatsFlushInterval is the bootstrap's stats_flush_interval
	// (DefaultStatsFlushInterval when zero).
	StatsFlushInterval time.Duration
}

// Server is the data-plane server.
type Server struct {
	cfg   Config
	log   *slog.Logger
	mgr   *manager.Manager
	st    store.Store
	cache cachev3.SnapshotCache

	mu       sync.Mutex
	addr     net.Addr
	streams  map[int64]*stream
	proxies  map[proxyKey]*proxyState
	byNodeID map[string]*proxyState
	// deltaSent remembers, per delta stream, recent nonces and versions.
	deltaSent map[int64][]deltaNonce
	// corrupt marks proxies whose config carries an unsupported field (test hook).
	corrupt map[proxyKey]bool

	recon   *reconciler
	insight *insightWriter
	// tokens validates the dataplane tokens proxies present.
	tokens *tokens.DataplaneTokens
	// zoneTokens validates the zone tokens zone proxies present (zoneproxy.go).
	zoneTokens *tokens.ZoneTokens
	// ca holds the meshes' CAs and issues proxies' workload certificates.
	ca *ca.Manager
	// timer measures push and ACK latencies (metricsservice_hooks.go).
	timer *xdsTimer
}

// stream is one open xDS stream.
type stream struct {
	id    int64
	delta bool
	proxy *proxyState
	// token is the dataplane token from the stream's metadata.
	token string
}

// proxyState is a proxy connected to this instance.
type proxyState struct {
	// node is what the proxy's newest stream said about it (read with
	// info: a reconnecting proxy replaces it while a recompute reads it).
	node    atomic.Pointer[nodeInfo]
	streams int
	// subscriptionID identifies the proxy's newest stream in its insight.
	subscriptionID string
	// versions are the versions last set in the cache, per type URL.
	versions map[string]string
	// inbound is the proxy's last built inbound part and inboundFP the
	// fingerprint of its model (share.go); guarded by reconciler.mu.
	inbound   *output
	inboundFP fingerprint
	// last is the proxy's last output, built from inputs lastInputs, with
	// its certificates due at lastRenew; guarded by reconciler.mu.
	last       *output
	lastInputs fingerprint
	lastRenew  time.Time
	// pushed is the output last compared with versions.
	pushed *output
	// mode is the xds_mode metrics label of the proxy's first stream.
	mode string
}

// newProxyState returns the state of a proxy first seen with info.
func newProxyState(info *nodeInfo) *proxyState {
	ps := &proxyState{}
	ps.node.Store(info)
	return ps
}

// info returns what the proxy's newest stream said about it.
func (ps *proxyState) info() *nodeInfo { return ps.node.Load() }

// New returns a data-plane server over mgr's store.
func New(cfg Config, mgr *manager.Manager, log *slog.Logger) *Server {
	if cfg.Debounce <= 0 {
		cfg.Debounce = 50 * time.Millisecond
	}
	s := &Server{
		cfg:       cfg,
		log:       log.With("component", "dp-server"),
		mgr:       mgr,
		st:        mgr.Store(),
		cache:     cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil),
		streams:   map[int64]*stream{},
		proxies:   map[proxyKey]*proxyState{},
		byNodeID:  map[string]*proxyState{},
		deltaSent: map[int64][]deltaNonce{},
		corrupt:   map[proxyKey]bool{},
		ca:        ca.New(mgr, log),
		timer:     newXDSTimer(cfg.Metrics),
	}
	s.tokens = tokens.NewDataplaneTokens(s.st)
	s.zoneTokens = tokens.NewZoneTokens(s.st)
	s.recon = newReconciler(s)
	s.recon.cache.vips = vip.New(s.st, cfg.VIPs, s.log)
	s.insight = newInsightWriter(s.st, s.log)
	return s
}

func (s *Server) dpDesc() *resource.Descriptor {
	d, _ := s.mgr.Registry().ByKind(kinds.Dataplane)
	return d
}

func (s *Server) meshDesc() *resource.Descriptor {
	d, _ := s.mgr.Registry().ByKind(kinds.Mesh)
	return d
}

// Addr returns the address the server listens on, once Run has started.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

func (s *Server) advertisedHostPort() (string, uint32) {
	addr := s.cfg.AdvertisedAddress
	if addr == "" && s.Addr() != nil {
		addr = s.Addr().String()
	}
	host, portStr, _ := net.SplitHostPort(addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	port, _ := strconv.Atoi(portStr)
	return host, uint32(port)
}

// Listen opens the server's socket; Serve then serves on it. Split so the
// caller knows the address before serving.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("dpServer.address: %w", err)
	}
	s.mu.Lock()
	s.addr = ln.Addr()
	s.mu.Unlock()
	return ln, nil
}

// Serve serves ADS and /bootstrap on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("loading the DP server certificate: %w", err)
	}
	if s.cfg.SingleInstance {
		s.closeStaleInsights(ctx)
	}
	s.scheduleDeregistrations(ctx)

	xds := serverv3.NewServer(ctx, s.cache, s.callbacks())
	gs := grpc.NewServer(
		grpc.MaxConcurrentStreams(1<<20),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	)
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, xds)
	metricsv3.RegisterMetricsServiceServer(gs, &metricsService{s: s})

	mux := http.NewServeMux()
	mux.HandleFunc("POST /bootstrap", s.handleBootstrap)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			gs.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12},
	}

	go s.recon.run(ctx)
	go s.insight.run(ctx)

	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	s.log.Info("data-plane server listening", "address", ln.Addr().String(), "authn", cmp.Or(s.cfg.Authn, AuthnDPToken))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx) // streams are long-lived: close them rather than wait
	_ = hs.Close()
	s.insight.flush(context.Background())
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
