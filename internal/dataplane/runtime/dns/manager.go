package dns

import (
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// Manager runs the DNS listeners of a proxy's configuration. The runtime
// calls Prepare with every listener, then Bind and Commit (or Abort), one
// configuration at a time.
type Manager struct {
	log *slog.Logger
	up  *upstream

	mu      sync.Mutex
	servers map[netip.AddrPort]*Server
}

// Option configures a Manager.
type Option func(*Manager)

// WithResolvConf reads the upstream resolvers from path instead of
// /etc/resolv.conf (tests).
func WithResolvConf(path string) Option {
	return func(m *Manager) { m.up.path = path }
}

// NewManager returns a manager with no listener. A nil log discards.
func NewManager(log *slog.Logger, opts ...Option) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{log: log, servers: map[netip.AddrPort]*Server{}}
	m.up = newUpstream(DefaultResolvConf, m.isSelf)
	for _, o := range opts {
		o(m)
	}
	return m
}

// isSelf reports whether ap is one of the manager's listeners.
func (m *Manager) isSelf(ap netip.AddrPort) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for addr := range m.servers {
		if addr.Port() == ap.Port() && (addr.Addr() == ap.Addr() || addr.Addr().IsUnspecified() || ap.Addr().IsLoopback() && addr.Addr().IsLoopback()) {
			return true
		}
	}
	return false
}

// Plan is a configuration's DNS listeners, checked, before it is applied.
type Plan struct {
	m       *Manager
	configs map[netip.AddrPort]*Config
	names   map[string]bool
	bound   map[netip.AddrPort]*Server
}

// Prepare picks the DNS listeners of listeners (IsDNSListener) and checks
// them; reg receives their statistics. Errors name the listener.
func (m *Manager) Prepare(listeners map[string]*listenerv3.Listener, reg stats.Registry) (*Plan, []error) {
	p := &Plan{m: m, configs: map[netip.AddrPort]*Config{}, names: map[string]bool{}, bound: map[netip.AddrPort]*Server{}}
	var errs []error
	owner := map[netip.AddrPort]string{}
	for _, name := range slices.Sorted(maps.Keys(listeners)) {
		l := listeners[name]
		if !IsDNSListener(l) {
			continue
		}
		p.names[name] = true
		if l.GetName() != name {
			errs = append(errs, fmt.Errorf("listener %q: name %q differs from the resource name", name, l.GetName()))
			continue
		}
		cfg, err := ParseListener(l, reg)
		if err != nil {
			errs = append(errs, fmt.Errorf("listener %q: %w", name, err))
			continue
		}
		if other, dup := owner[cfg.Addr]; dup {
			errs = append(errs, fmt.Errorf("listener %q: address %s is also the address of listener %q", name, cfg.Addr, other))
			continue
		}
		owner[cfg.Addr] = name
		p.configs[cfg.Addr] = cfg
	}
	return p, errs
}

// Owns reports whether the named listener is a DNS listener (the runtime
// builds the others).
func (p *Plan) Owns(name string) bool { return p.names[name] }

// Bind opens the sockets of the addresses no running DNS listener has. On
// error it closes what it opened.
func (p *Plan) Bind() error {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	for _, addr := range slices.SortedFunc(maps.Keys(p.configs), netip.AddrPort.Compare) {
		if _, ok := p.m.servers[addr]; ok {
			continue
		}
		s, err := Listen(addr)
		if err != nil {
			p.abortLocked()
			return fmt.Errorf("listener %q: %w", p.configs[addr].Name, err)
		}
		p.bound[addr] = s
	}
	return nil
}

// Abort closes the sockets Bind opened (the configuration is not applied).
func (p *Plan) Abort() {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	p.abortLocked()
}

func (p *Plan) abortLocked() {
	for addr, s := range p.bound {
		s.udp.Close()
		s.tcp.Close()
		delete(p.bound, addr)
	}
}

// Commit swaps the configurations in: running listeners keep their
// sockets and take their new table, new ones start, removed ones close.
func (p *Plan) Commit() {
	p.m.mu.Lock()
	var closing []*Server
	for addr, s := range p.m.servers {
		if _, keep := p.configs[addr]; !keep {
			delete(p.m.servers, addr)
			closing = append(closing, s)
		}
	}
	for addr, cfg := range p.configs {
		if s, ok := p.m.servers[addr]; ok {
			s.SetConfig(cfg)
			continue
		}
		s := p.bound[addr]
		s.Start(cfg, p.m.up, p.m.log)
		p.m.servers[addr] = s
		p.m.log.Info("DNS listener added", "name", cfg.Name, "address", addr.String(), "names", cfg.Table.Len())
	}
	p.bound = nil
	p.m.mu.Unlock()
	for _, s := range closing {
		p.m.log.Info("DNS listener removed", "address", s.Addr().String())
		s.Close()
	}
}

// Addrs returns the addresses of the running DNS listeners, sorted.
func (m *Manager) Addrs() []netip.AddrPort {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.SortedFunc(maps.Keys(m.servers), netip.AddrPort.Compare)
}

// Close stops every DNS listener.
func (m *Manager) Close() {
	m.mu.Lock()
	servers := slices.Collect(maps.Values(m.servers))
	clear(m.servers)
	m.mu.Unlock()
	for _, s := range servers {
		s.Close()
	}
}
