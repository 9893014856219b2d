package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netlocalratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/local_ratelimit/v3"
	networkrbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/allowlist"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/cluster"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/httpproxy"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/xdsutil"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/listener"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/netratelimit"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/rbac"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/secret"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/tcpproxy"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/tlsctx"
	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// checkAllowList runs the allow-list over every resource of cfg, in a
// stable order, and returns one error per violation, prefixed with the
// resource: `listener "outbound:127.0.0.1:10001": field ... is not
// supported by trellis-dp`.
func checkAllowList(cfg *xdsconfig.Config) []error {
	var errs []error
	check := func(kind, name string, m proto.Message) {
		for _, e := range allowlist.Check(m) {
			errs = append(errs, fmt.Errorf("%s %q: %w", kind, name, e))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Listeners)) {
		check("listener", name, cfg.Listeners[name])
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Routes)) {
		check("route_configuration", name, cfg.Routes[name])
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Clusters)) {
		check("cluster", name, cfg.Clusters[name])
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Endpoints)) {
		check("cluster_load_assignment", name, cfg.Endpoints[name])
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Secrets)) {
		check("secret", name, cfg.Secrets[name])
	}
	return errs
}

// compileRoutes compiles every RouteConfiguration of cfg.
func compileRoutes(cfg *xdsconfig.Config, resolve httpproxy.Resolver) (map[string]*httpproxy.RouteTable, []error) {
	var errs []error
	out := make(map[string]*httpproxy.RouteTable, len(cfg.Routes))
	for _, name := range slices.Sorted(maps.Keys(cfg.Routes)) {
		rc := cfg.Routes[name]
		if rc.GetName() != name {
			errs = append(errs, fmt.Errorf("route_configuration %q: name %q differs from the resource name", name, rc.GetName()))
			continue
		}
		rt, err := httpproxy.CompileRouteConfiguration(rc, resolve)
		if err != nil {
			errs = append(errs, fmt.Errorf("route_configuration %q: %w", name, err))
			continue
		}
		out[name] = rt
	}
	return out, errs
}

// parseSecrets parses every Secret of cfg.
func parseSecrets(cfg *xdsconfig.Config) (map[string]*secret.Secret, []error) {
	var errs []error
	out := make(map[string]*secret.Secret, len(cfg.Secrets))
	for _, name := range slices.Sorted(maps.Keys(cfg.Secrets)) {
		s := cfg.Secrets[name]
		if s.GetName() != name {
			errs = append(errs, fmt.Errorf("secret %q: name %q differs from the resource name", name, s.GetName()))
			continue
		}
		p, err := secret.Parse(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("secret %q: %w", name, err))
			continue
		}
		out[name] = p
	}
	return out, errs
}

// Names of the listener filter and network filters trellis-dp runs.
const (
	tlsInspectorName = "envoy.filters.listener.tls_inspector"
	networkRBACName  = "envoy.filters.network.rbac"
)

// chainBuilder builds listener configurations against one configuration.
type chainBuilder struct {
	clusters *cluster.Plan
	routes   map[string]*httpproxy.RouteTable
	secrets  *secret.Store
	reg      stats.Registry
	rt       *Runtime
	// outbound: the listener being built is OUTBOUND (its HCMs make
	// client spans).
	outbound bool
}

// build checks a Listener and builds its configuration; it returns the
// address to bind.
func (b *chainBuilder) build(name string, l *listenerv3.Listener) (netip.AddrPort, *listener.Config, error) {
	if l.GetName() != name {
		return netip.AddrPort{}, nil, fmt.Errorf("name %q differs from the resource name", l.GetName())
	}
	addr, err := xdsutil.SocketAddress(l.GetAddress())
	if err != nil {
		return netip.AddrPort{}, nil, fmt.Errorf("address: %w", err)
	}
	cfg := &listener.Config{Name: name}
	b.outbound = l.GetTrafficDirection() == corev3.TrafficDirection_OUTBOUND
	for i, lf := range l.GetListenerFilters() {
		kind, err := listenerFilterKind(lf)
		if err != nil {
			return addr, nil, fmt.Errorf("listener_filters[%d] (%q): %w", i, lf.GetName(), err)
		}
		on := &cfg.InspectTLS
		if kind == originalDstName {
			on = &cfg.OriginalDst
		}
		if *on {
			return addr, nil, fmt.Errorf("listener_filters[%d]: %s is already configured", i, kind)
		}
		*on = true
	}
	lfPrint, err := deterministic.Marshal(&listenerv3.Listener{ListenerFilters: l.GetListenerFilters()})
	if err != nil {
		return addr, nil, fmt.Errorf("listener_filters: %w", err)
	}
	fcs := l.GetFilterChains()
	if len(fcs) == 0 && l.GetDefaultFilterChain() == nil {
		return addr, nil, errors.New("filter_chains: at least one filter chain (or a default_filter_chain) is required")
	}
	seen := map[chainMatchKey]int{}
	for i, fc := range fcs {
		ch, err := b.chain(name, addr, fc, lfPrint)
		if err != nil {
			return addr, nil, fmt.Errorf("filter_chains[%d]: %w", i, err)
		}
		key := matchKey(ch)
		if j, dup := seen[key]; dup {
			return addr, nil, fmt.Errorf("filter_chains[%d]: filter_chain_match is the same as that of filter_chains[%d]", i, j)
		}
		seen[key] = i
		if len(ch.ServerNames) > 0 && !cfg.InspectTLS {
			return addr, nil, fmt.Errorf("filter_chains[%d].filter_chain_match.server_names needs the %s listener filter", i, tlsInspectorName)
		}
		if ch.TransportProtocol == listener.ProtocolTLS && !cfg.InspectTLS {
			return addr, nil, fmt.Errorf("filter_chains[%d].filter_chain_match.transport_protocol %q needs the %s listener filter", i, ch.TransportProtocol, tlsInspectorName)
		}
		cfg.Chains = append(cfg.Chains, ch)
	}
	if cfg.Default, err = b.defaultChain(name, addr, l.GetDefaultFilterChain(), lfPrint); err != nil {
		return addr, nil, fmt.Errorf("default_filter_chain: %w", err)
	}
	return addr, cfg, nil
}

var deterministic = proto.MarshalOptions{Deterministic: true}

// chain builds one filter chain.
func (b *chainBuilder) chain(name string, addr netip.AddrPort, fc *listenerv3.FilterChain, lfPrint []byte) (*listener.Chain, error) {
	fp, err := deterministic.Marshal(fc)
	if err != nil {
		return nil, err
	}
	ch := &listener.Chain{
		TransportProtocol: fc.GetFilterChainMatch().GetTransportProtocol(),
		Fingerprint:       string(lfPrint) + string(fp),
	}
	switch ch.TransportProtocol {
	case "", listener.ProtocolTLS, listener.ProtocolRawBuffer:
	default:
		return nil, fmt.Errorf("filter_chain_match.transport_protocol %q is not supported (tls or raw_buffer)", ch.TransportProtocol)
	}
	if err := destinationMatch(ch, fc.GetFilterChainMatch()); err != nil {
		return nil, fmt.Errorf("filter_chain_match.%w", err)
	}
	if err := serverNamesMatch(ch, fc.GetFilterChainMatch()); err != nil { // zoneproxy.go
		return nil, fmt.Errorf("filter_chain_match.%w", err)
	}
	if ts := fc.GetTransportSocket(); ts != nil {
		if ch.TLS, err = b.downstreamTLS(ts, addr); err != nil {
			return nil, fmt.Errorf("transport_socket: %w", err)
		}
	}
	filters := fc.GetFilters()
	if len(filters) == 0 {
		return nil, errors.New("filters: a tcp_proxy or http_connection_manager filter is required")
	}
	log := b.rt.log.With("listener", name)
	for i, f := range filters {
		last := i == len(filters)-1
		if err := b.filter(ch, f, last, log); err != nil {
			return nil, fmt.Errorf("filters[%d] (%q): %w", i, f.GetName(), err)
		}
	}
	return ch, nil
}

func (b *chainBuilder) downstreamTLS(ts *corev3.TransportSocket, addr netip.AddrPort) (*tlsctx.Server, error) {
	if n := ts.GetName(); n != "" && n != cluster.TLSTransportSocketName {
		return nil, fmt.Errorf("name %q: only %s is supported", n, cluster.TLSTransportSocketName)
	}
	a := ts.GetTypedConfig()
	var dtc tlsv3.DownstreamTlsContext
	if a == nil || !a.MessageIs(&dtc) {
		return nil, fmt.Errorf("typed_config must be a DownstreamTlsContext, got %q", a.GetTypeUrl())
	}
	if err := a.UnmarshalTo(&dtc); err != nil {
		return nil, fmt.Errorf("typed_config: %w", err)
	}
	srv, err := tlsctx.NewServer(&dtc, b.secrets, tlsctx.NewStats(b.reg, listener.StatScope(addr)))
	if err != nil {
		return nil, fmt.Errorf("typed_config: %w", err)
	}
	return srv, nil
}

// filter builds one network filter into ch: RBAC filters first, then the
// terminal tcp_proxy or http_connection_manager.
func (b *chainBuilder) filter(ch *listener.Chain, f *listenerv3.Filter, last bool, log *slog.Logger) error {
	tc := f.GetTypedConfig()
	if tc == nil {
		return errors.New("typed_config is required")
	}
	msg, err := tc.UnmarshalNew()
	if err != nil {
		return fmt.Errorf("typed_config: %w", err)
	}
	resolve := b.clusters.Get
	switch cfg := msg.(type) {
	case *networkrbacv3.RBAC:
		if last {
			return errors.New("the last network filter must be tcp_proxy or http_connection_manager")
		}
		if cfg.GetStatPrefix() == "" {
			return errors.New("stat_prefix is required")
		}
		rf, err := rbac.NewFilter(cfg.GetRules(), cfg.GetShadowRules(), cfg.GetStatPrefix(), b.reg, log)
		if err != nil {
			return err
		}
		ch.RBAC = append(ch.RBAC, rf)
		return nil
	case *netlocalratelimitv3.LocalRateLimit:
		if last {
			return errors.New("the last network filter must be tcp_proxy or http_connection_manager")
		}
		rl, err := netratelimit.New(cfg, b.reg)
		if err != nil {
			return err
		}
		ch.RateLimit = append(ch.RateLimit, rl)
		return nil
	case *tcpproxyv3.TcpProxy, *hcmv3.HttpConnectionManager:
		if !last {
			return errors.New("tcp_proxy and http_connection_manager must be the last network filter")
		}
	default:
		return fmt.Errorf("typed_config %s is not a network filter", tc.GetTypeUrl())
	}
	if tp, ok := msg.(*tcpproxyv3.TcpProxy); ok {
		ch.TCP, err = tcpproxy.Build(tp, resolve, b.reg, log)
		return err
	}
	rds := func(n string) *httpproxy.RouteTable { return b.routes[n] }
	ch.HTTP, err = httpproxy.Build(msg.(*hcmv3.HttpConnectionManager), rds, resolve, b.reg, log)
	if err == nil {
		ch.HTTP.SetOutbound(b.outbound)
	}
	return err
}
