package cluster

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/xdsutil"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/secret"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/tlsctx"
)

// defaultConnectTimeout is Envoy's connect_timeout default.
const defaultConnectTimeout = 5 * time.Second

// httpProtocolOptionsKey is the typed_extension_protocol_options key of
// the upstream HTTP protocol options.
const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// Manager owns the clusters of the running configuration. A cluster whose
// definition is unchanged across updates is kept (with its connection
// pool); only its membership is replaced.
type Manager struct {
	active  *stats.Gauge
	secrets *secret.Store

	mu       sync.Mutex
	clusters map[string]*Cluster
}

// NewManager returns a Manager with no clusters that registers its metrics
// in store. Clusters with an upstream TLS transport socket read their
// certificate and trusted CAs from secrets at each handshake.
func NewManager(store *stats.Store, secrets *secret.Store) *Manager {
	return &Manager{
		active:   store.Gauge("cluster_manager.active_clusters"),
		secrets:  secrets,
		clusters: map[string]*Cluster{},
	}
}

// Plan is a validated set of clusters and memberships, built without side
// effects, that Commit installs.
type Plan struct {
	m         *Manager
	clusters  map[string]*Cluster
	endpoints map[*Cluster][]Endpoint
}

// Get returns the planned cluster with the given name, or nil when the
// configuration does not (yet) have it.
func (p *Plan) Get(name string) *Cluster { return p.clusters[name] }

// Prepare validates the clusters and load assignments of a configuration
// and plans their installation; new clusters register their metrics in
// reg. Errors name the resource: `cluster "backend": ...`,
// `cluster_load_assignment "backend": ...`.
func (m *Manager) Prepare(defs map[string]*clusterv3.Cluster, clas map[string]*endpointv3.ClusterLoadAssignment, reg stats.Registry) (*Plan, error) {
	var errs []error
	members := make(map[string][]Endpoint, len(clas))
	for _, name := range slices.Sorted(maps.Keys(clas)) {
		eps, err := ParseLoadAssignment(clas[name])
		if err == nil && clas[name].GetClusterName() != name {
			err = fmt.Errorf("cluster_name %q differs from the resource name", clas[name].GetClusterName())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster_load_assignment %q: %w", name, err))
			continue
		}
		members[name] = eps
	}

	m.mu.Lock()
	current := m.clusters
	m.mu.Unlock()
	p := &Plan{m: m, clusters: make(map[string]*Cluster, len(defs)), endpoints: make(map[*Cluster][]Endpoint, len(defs))}
	for _, name := range slices.Sorted(maps.Keys(defs)) {
		def := defs[name]
		c := current[name]
		if c == nil || !proto.Equal(c.def, def) {
			var err error
			if c, err = newCluster(name, def, reg, m.secrets); err != nil {
				errs = append(errs, fmt.Errorf("cluster %q: %w", name, err))
				continue
			}
		}
		var eps []Endpoint
		if c.edsName != "" {
			eps = members[c.edsName]
		} else if la := def.GetLoadAssignment(); la != nil {
			var err error
			if eps, err = ParseLoadAssignment(la); err != nil {
				errs = append(errs, fmt.Errorf("cluster %q: load_assignment: %w", name, err))
				continue
			}
		}
		p.clusters[name] = c
		p.endpoints[c] = eps
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// Commit installs the plan: memberships change at once for new requests
// and connections, removed and replaced clusters release their idle
// connections (and again after drain, once requests in flight are done).
func (p *Plan) Commit(drain time.Duration) {
	for c, s := range p.endpoints {
		c.setEndpoints(s)
	}
	m := p.m
	m.mu.Lock()
	old := m.clusters
	m.clusters = p.clusters
	m.mu.Unlock()
	m.active.Set(int64(len(p.clusters)))
	var retired []*Cluster
	for name, c := range old {
		switch p.clusters[name] {
		case c:
		case nil:
			c.stats.MembershipHealthy.Set(0)
			c.stats.MembershipTotal.Set(0)
			retired = append(retired, c)
		default:
			retired = append(retired, c)
		}
	}
	for name, c := range p.clusters {
		if old[name] != c {
			c.start()
		}
	}
	retire(retired, drain)
}

// Close stops the health checking and outlier detection of every cluster
// and releases their idle connections.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.clusters {
		c.stop()
		c.closeIdle()
	}
}

// retire stops the health checking and outlier detection of clusters that
// left the configuration (at once: their hosts' health no longer matters)
// and releases their connections.
func retire(cs []*Cluster, drain time.Duration) {
	if len(cs) == 0 {
		return
	}
	for _, c := range cs {
		c.stop()
		c.closeIdle()
	}
	time.AfterFunc(drain, func() {
		for _, c := range cs {
			c.closeIdle()
		}
	})
}

// newCluster checks the semantics the allow-list cannot express and builds
// a Cluster with no members.
func newCluster(name string, def *clusterv3.Cluster, reg stats.Registry, secrets *secret.Store) (*Cluster, error) {
	if def.GetName() != name {
		return nil, fmt.Errorf("name %q differs from the resource name", def.GetName())
	}
	c := &Cluster{name: name, def: def, trafficCh: make(chan struct{})}
	var err error
	if c.lb.cfg, err = parseLB(def); err != nil {
		return nil, err
	}
	if c.breaker, err = parseBreaker(def.GetCircuitBreakers()); err != nil {
		return nil, err
	}
	if c.connectTimeout, err = xdsutil.Duration(def.GetConnectTimeout(), defaultConnectTimeout); err != nil {
		return nil, fmt.Errorf("connect_timeout: %w", err)
	}
	if c.connectTimeout == 0 {
		return nil, errors.New("connect_timeout must be positive")
	}
	switch def.GetType() {
	case clusterv3.Cluster_STATIC:
		if def.GetEdsClusterConfig() != nil {
			return nil, errors.New("eds_cluster_config is only for type EDS")
		}
	case clusterv3.Cluster_EDS:
		eds := def.GetEdsClusterConfig()
		if eds == nil {
			return nil, errors.New("eds_cluster_config is required for type EDS")
		}
		if err := xdsutil.CheckADS(eds.GetEdsConfig()); err != nil {
			return nil, fmt.Errorf("eds_cluster_config.eds_config: %w", err)
		}
		if def.GetLoadAssignment() != nil {
			return nil, errors.New("load_assignment is only for type STATIC")
		}
		c.edsName = eds.GetServiceName()
		if c.edsName == "" {
			c.edsName = name
		}
	case clusterv3.Cluster_ORIGINAL_DST:
		if err := checkOriginalDst(def); err != nil {
			return nil, err
		}
		c.originalDst = true
	default:
		return nil, fmt.Errorf("type %s is not supported (STATIC, EDS or ORIGINAL_DST only)", def.GetType())
	}
	if c.bind, err = parseBindConfig(def.GetUpstreamBindConfig()); err != nil {
		return nil, fmt.Errorf("upstream_bind_config.%w", err)
	}
	if def.GetLbPolicy() == clusterv3.Cluster_CLUSTER_PROVIDED && !c.originalDst {
		return nil, fmt.Errorf("lb_policy CLUSTER_PROVIDED needs type ORIGINAL_DST, not %s", def.GetType())
	}
	if c.http2, c.protocol, err = upstreamHTTP(def); err != nil {
		return nil, err
	}
	c.stats = newStats(reg, name)
	if od := def.GetOutlierDetection(); od != nil {
		if c.outlier, err = newOutlierDetector(c, od, reg); err != nil {
			return nil, fmt.Errorf("outlier_detection: %w", err)
		}
	}
	if ts := def.GetTransportSocket(); ts != nil {
		if c.tls, err = upstreamTLS(ts, secrets, tlsctx.NewStats(reg, "cluster."+name)); err != nil {
			return nil, fmt.Errorf("transport_socket: %w", err)
		}
	}
	c.transport = c.newTransport()
	c.h1.idleTimeout, c.h1.maxAge = c.protocol.idleTimeout, c.protocol.maxConnectionDuration
	if c.tls != nil {
		c.h1TLS = c.tls.WithDefaultALPN([]string{"http/1.1"})
	}
	if hcs := def.GetHealthChecks(); len(hcs) > 0 {
		if len(hcs) > 1 {
			return nil, errors.New("health_checks: only one health check is supported")
		}
		if c.hc, err = newHealthChecker(c, hcs[0], reg); err != nil {
			return nil, fmt.Errorf("health_checks[0]: %w", err)
		}
	}
	return c, nil
}

// TLSTransportSocketName is the name of the TLS transport socket.
const TLSTransportSocketName = "envoy.transport_sockets.tls"

// upstreamTLS builds the client side of an UpstreamTlsContext transport
// socket.
func upstreamTLS(ts *corev3.TransportSocket, secrets *secret.Store, st *tlsctx.Stats) (*tlsctx.Client, error) {
	a := ts.GetTypedConfig()
	if a == nil {
		return nil, fmt.Errorf("typed_config is required (%s with an UpstreamTlsContext)", TLSTransportSocketName)
	}
	var utc tlsv3.UpstreamTlsContext
	if !a.MessageIs(&utc) {
		return nil, fmt.Errorf("typed_config %s is not an UpstreamTlsContext", a.GetTypeUrl())
	}
	if err := a.UnmarshalTo(&utc); err != nil {
		return nil, fmt.Errorf("typed_config: %w", err)
	}
	if n := ts.GetName(); n != "" && n != TLSTransportSocketName {
		return nil, fmt.Errorf("name %q: only %s is supported", n, TLSTransportSocketName)
	}
	cl, err := tlsctx.NewClient(&utc, secrets, st)
	if err != nil {
		return nil, fmt.Errorf("typed_config: %w", err)
	}
	return cl, nil
}

// ParseLoadAssignment returns the endpoints of a load assignment, checking
// their addresses.
func ParseLoadAssignment(cla *endpointv3.ClusterLoadAssignment) ([]Endpoint, error) {
	var out []Endpoint
	for i, lle := range cla.GetEndpoints() {
		for j, lbe := range lle.GetLbEndpoints() {
			ap, err := xdsutil.SocketAddress(lbe.GetEndpoint().GetAddress())
			if err != nil {
				return nil, fmt.Errorf("endpoints[%d].lb_endpoints[%d].endpoint.address: %w", i, j, err)
			}
			w := uint32(1)
			if lw := lbe.GetLoadBalancingWeight(); lw != nil {
				if lw.GetValue() == 0 {
					return nil, fmt.Errorf("endpoints[%d].lb_endpoints[%d].load_balancing_weight must be at least 1", i, j)
				}
				w = lw.GetValue()
			}
			hs := lbe.GetHealthStatus()
			out = append(out, Endpoint{
				Addr:     ap.String(),
				Weight:   w,
				Zone:     lle.GetLocality().GetZone(),
				Priority: lle.GetPriority(),
				Healthy:  hs == corev3.HealthStatus_HEALTHY || hs == corev3.HealthStatus_UNKNOWN,
			})
		}
	}
	return out, nil
}
