// Package runtime is the proxy of trellis-dp: it turns the Envoy v3
// resources the control plane sends (an xdsconfig.Config) into listening
// sockets, tcp_proxy and HTTP connection manager filter chains, and
// upstream clusters, and swaps configurations in atomically.
//
// Apply validates the whole Config first (the allow-list of
// docs/xds-contract.md, then the semantics), builds every chain and binds
// every new socket, and only then commits: on any error nothing changes
// and the previous configuration keeps serving.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/cluster"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/dns"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/listener"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/secret"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("proxy runtime is closed")

// DefaultDrainTimeout is how long a removed listener's connections may go
// on before they are closed.
const DefaultDrainTimeout = 5 * time.Second

// Option configures a Runtime.
type Option func(*Runtime)

// WithDrainTimeout sets how long removed listeners (and Close) let open
// connections finish before closing them.
func WithDrainTimeout(d time.Duration) Option {
	return func(rt *Runtime) { rt.drainTimeout = d }
}

// Runtime runs the proxy. It implements xdsconfig.Applier.
type Runtime struct {
	log             *slog.Logger
	drainTimeout    time.Duration
	stats           *stats.Store
	secrets         *secret.Store
	clusters        *cluster.Manager
	listenersActive *stats.Gauge
	// dns runs the DNS listeners (UDP, the dns_filter).
	dns *dns.Manager

	mu        sync.Mutex // serializes Apply and Close
	listeners map[netip.AddrPort]*listener.Listener
	current   atomic.Pointer[xdsconfig.Config]
	closed    bool
	ready     atomic.Bool
	draining  sync.WaitGroup
}

var _ xdsconfig.Applier = (*Runtime)(nil)

// New returns a Runtime with no configuration: nothing listens until the
// first Apply. A nil log discards.
func New(log *slog.Logger, opts ...Option) *Runtime {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st := stats.NewStore()
	secrets := secret.NewStore()
	rt := &Runtime{
		log:             log,
		drainTimeout:    DefaultDrainTimeout,
		stats:           st,
		secrets:         secrets,
		clusters:        cluster.NewManager(st, secrets),
		listenersActive: st.Gauge("listener_manager.total_listeners_active"),
		listeners:       map[netip.AddrPort]*listener.Listener{},
		dns:             dns.NewManager(log.With("component", "dns")),
	}
	for _, o := range opts {
		o(rt)
	}
	return rt
}

// Apply validates cfg and installs it. The returned error names each
// offending resource and field; it then changes nothing.
func (rt *Runtime) Apply(ctx context.Context, cfg *xdsconfig.Config) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return ErrClosed
	}
	if errs := checkAllowList(cfg); len(errs) > 0 {
		return errors.Join(errs...)
	}
	secrets, errs := parseSecrets(cfg)
	batch := rt.stats.Batch()
	plan, err := rt.clusters.Prepare(cfg.Clusters, cfg.Endpoints, batch)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	routes, rerrs := compileRoutes(cfg, plan.Get)
	errs = append(errs, rerrs...)
	b := &chainBuilder{clusters: plan, routes: routes, secrets: rt.secrets, reg: batch, rt: rt}
	dnsPlan, derrs := rt.dns.Prepare(cfg.Listeners, batch)
	errs = append(errs, derrs...)
	chains := map[netip.AddrPort]*listener.Config{}
	owner := map[netip.AddrPort]string{}
	for _, name := range slices.Sorted(maps.Keys(cfg.Listeners)) {
		if dnsPlan.Owns(name) {
			continue
		}
		addr, chain, err := b.build(name, cfg.Listeners[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("listener %q: %w", name, err))
			continue
		}
		if other, dup := owner[addr]; dup {
			errs = append(errs, fmt.Errorf("listener %q: address %s is also the address of listener %q", name, addr, other))
			continue
		}
		owner[addr] = name
		chains[addr] = chain
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := dnsPlan.Bind(); err != nil {
		return err
	}
	bound, err := rt.bindNew(chains)
	if err != nil {
		dnsPlan.Abort()
		return err
	}

	// Commit: from here on nothing fails. Secrets first: the new
	// listeners and clusters may handshake as soon as they are in.
	batch.Commit()
	rt.secrets.Swap(secrets)
	plan.Commit(rt.drainTimeout)
	rt.commitListeners(chains, bound, batch)
	dnsPlan.Commit()
	rt.current.Store(cfg)
	rt.ready.Store(true)
	rt.log.Info("configuration applied", "listeners", len(cfg.Listeners), "routes", len(cfg.Routes),
		"clusters", len(cfg.Clusters), "endpoints", len(cfg.Endpoints), "secrets", len(cfg.Secrets))
	return nil
}

// bindNew binds the addresses that no running listener has. On error it
// closes what it bound.
func (rt *Runtime) bindNew(chains map[netip.AddrPort]*listener.Config) (map[netip.AddrPort]*net.TCPListener, error) {
	bound := map[netip.AddrPort]*net.TCPListener{}
	for _, addr := range slices.SortedFunc(maps.Keys(chains), netip.AddrPort.Compare) {
		if _, ok := rt.listeners[addr]; ok {
			continue
		}
		ln, err := listener.Listen(addr)
		if err != nil {
			for _, l := range bound {
				_ = l.Close()
			}
			return nil, fmt.Errorf("listener %q: %w", chains[addr].Name, err)
		}
		bound[addr] = ln
	}
	return bound, nil
}

func (rt *Runtime) commitListeners(chains map[netip.AddrPort]*listener.Config, bound map[netip.AddrPort]*net.TCPListener, reg stats.Registry) {
	for addr, l := range rt.listeners {
		if _, keep := chains[addr]; keep {
			continue
		}
		delete(rt.listeners, addr)
		rt.log.Info("listener removed, draining", "address", addr.String(), "drain_timeout", rt.drainTimeout)
		l.StopAccepting() // the socket closes before Apply returns; connections drain in the background
		rt.draining.Go(func() { l.Drain(rt.drainTimeout) })
	}
	for addr, chain := range chains {
		if l, ok := rt.listeners[addr]; ok {
			l.SetConfig(chain)
			continue
		}
		l := listener.New(bound[addr], rt.stats, rt.log)
		l.Start(chain)
		rt.listeners[addr] = l
		rt.log.Info("listener added", "name", chain.Name, "address", addr.String())
	}
	rt.listenersActive.Set(int64(len(rt.listeners)))
}

// Close stops every listener and drains its connections for up to the
// drain timeout or until ctx ends, whichever comes first, then closes what
// is left and releases upstream connections. Apply fails afterwards.
func (rt *Runtime) Close(ctx context.Context) error {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return nil
	}
	rt.closed = true
	rt.ready.Store(false)
	timeout := rt.drainTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	for addr, l := range rt.listeners {
		delete(rt.listeners, addr)
		l.StopAccepting()
		rt.draining.Go(func() { l.Drain(timeout) })
	}
	rt.listenersActive.Set(0)
	done := make(chan struct{})
	go func() { rt.draining.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	rt.dns.Close()
	rt.clusters.Close()
	return err
}

// Ready reports whether a configuration has been applied (so its
// listeners are bound) and the runtime is not closed.
func (rt *Runtime) Ready() bool { return rt.ready.Load() }

// Stats returns every metric by its Envoy-like name.
func (rt *Runtime) Stats() map[string]uint64 { return rt.stats.Snapshot() }

// StatsStore returns the proxy's stats store: its Families are the
// Prometheus view of every stat (admin /stats/prometheus, MeshMetric, the
// metrics sent to the control plane).
func (rt *Runtime) StatsStore() *stats.Store { return rt.stats }

// Config returns the configuration last applied, or nil.
func (rt *Runtime) Config() *xdsconfig.Config { return rt.current.Load() }

// ListenerAddrs returns the addresses of the running listeners, sorted.
func (rt *Runtime) ListenerAddrs() []netip.AddrPort {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return slices.SortedFunc(maps.Keys(rt.listeners), netip.AddrPort.Compare)
}
