package runtime

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/allowlist"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/cluster"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/httpproxy"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/xdsutil"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/listener"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/tcpproxy"
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
		errs = append(errs, fmt.Errorf("secret %q: Secret resources are not supported by trellis-dp", name))
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

// chainBuilder builds listener chains against one configuration.
type chainBuilder struct {
	clusters *cluster.Plan
	routes   map[string]*httpproxy.RouteTable
	reg      stats.Registry
	rt       *Runtime
}

// build checks a Listener and builds its chain; it returns the address to
// bind.
func (b *chainBuilder) build(name string, l *listenerv3.Listener) (netip.AddrPort, *listener.Chain, error) {
	if l.GetName() != name {
		return netip.AddrPort{}, nil, fmt.Errorf("name %q differs from the resource name", l.GetName())
	}
	addr, err := xdsutil.SocketAddress(l.GetAddress())
	if err != nil {
		return netip.AddrPort{}, nil, fmt.Errorf("address: %w", err)
	}
	fcs := l.GetFilterChains()
	if len(fcs) != 1 {
		return addr, nil, fmt.Errorf("filter_chains: exactly one filter chain is supported, got %d", len(fcs))
	}
	filters := fcs[0].GetFilters()
	if len(filters) != 1 {
		return addr, nil, fmt.Errorf("filter_chains[0].filters: exactly one network filter is supported, got %d", len(filters))
	}
	chain, err := b.filter(name, filters[0])
	if err != nil {
		return addr, nil, fmt.Errorf("filter_chains[0].filters[0] (%q): %w", filters[0].GetName(), err)
	}
	return addr, chain, nil
}

func (b *chainBuilder) filter(name string, f *listenerv3.Filter) (*listener.Chain, error) {
	tc := f.GetTypedConfig()
	if tc == nil {
		return nil, errors.New("typed_config is required")
	}
	msg, err := tc.UnmarshalNew()
	if err != nil {
		return nil, fmt.Errorf("typed_config: %w", err)
	}
	resolve := b.clusters.Get
	log := b.rt.log.With("listener", name)
	switch cfg := msg.(type) {
	case *tcpproxyv3.TcpProxy:
		p, err := tcpproxy.Build(cfg, resolve, b.reg, log)
		if err != nil {
			return nil, err
		}
		return &listener.Chain{Name: name, TCP: p}, nil
	case *hcmv3.HttpConnectionManager:
		rds := func(n string) *httpproxy.RouteTable { return b.routes[n] }
		h, err := httpproxy.Build(cfg, rds, resolve, b.reg, log)
		if err != nil {
			return nil, err
		}
		return &listener.Chain{Name: name, HTTP: h}, nil
	default:
		return nil, fmt.Errorf("typed_config %s is not a network filter", tc.GetTypeUrl())
	}
}
