// Package httpproxy implements the envoy.filters.network.http_connection_manager
// network filter with the router HTTP filter: virtual hosts and routes
// from RDS or an inline route_config, and the actions forward to a cluster
// (or weighted clusters) with a timeout, direct_response and redirect.
//
// The listener serves HTTP/1.1 connections with ServeHTTP1, the fast path
// (h1serve.go): one goroutine per connection forwards each request over a
// pooled upstream HTTP/1.1 connection of the cluster. What the fast path
// does not handle (HTTP/2 with prior knowledge or by ALPN, routes to
// HTTP/2 clusters, HTTP/1.0, Expect, invalid requests, ...) goes to
// net/http with the Handler as its http.Handler, and from there through
// the cluster's pooled net/http transport. Either way requests and
// responses (trailers included, so gRPC passes through) are streamed,
// without buffering whole bodies.
//
// Both paths implement the same resilience features: the HTTP filters
// RBAC, fault injection (fault.go) and local rate limit (ratelimit.go)
// before the router; the route's retry policy (retry.go: conditions,
// back-off, replay of request bodies up to 1 MiB); the route, per-try,
// stream idle, max stream duration and connection timeouts
// (timeouts.go); and for every upstream attempt the cluster's circuit
// breakers, hash key and outlier detection (Begin, PickHash, Done). The
// fast path's exchange is h1forward.go, the net/http one netexchange.go.
package httpproxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	httprbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/allowlist"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/internal/xdsutil"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/peer"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/rbac"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// RouterFilterName is the name of the router HTTP filter, the last of
// every HTTP filter chain.
const RouterFilterName = "envoy.filters.http.router"

const (
	routerTypeURL   = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
	httpRBACTypeURL = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
)

// RouteLookup returns the compiled RouteConfiguration with the given name
// in the configuration being built, or nil when RDS has not delivered it.
type RouteLookup func(name string) *RouteTable

// Handler is a built http_connection_manager, immutable once built.
type Handler struct {
	statPrefix string
	rdsName    string
	routes     *RouteTable
	log        *slog.Logger
	stats      *httpStats
	reg        stats.Registry
	// filters are the HTTP filters before the router, in order.
	filters []httpFilter
	// netHTTPOnly: a filter (response rate limit) needs the net/http path.
	netHTTPOnly bool
	timeouts    hcmTimeouts
	retryStats  map[string]*retryStats // by cluster name; immutable once built
	obs         *observer              // access logs and tracing; nil: neither (observe.go)
}

// httpFilter is one HTTP filter before the router: exactly one field is
// set.
type httpFilter struct {
	rbac  *rbac.Filter
	fault *faultFilter
	rl    *localRateLimit
}

// verdict is what the HTTP filters decided for a request.
type verdict struct {
	// status, when not 0, answers the request locally with body and
	// headers.
	status  int
	body    string
	headers []replyHeader
	// delay holds the request before it is forwarded (fault delay).
	delay time.Duration
	// limitKbps throttles the response body (fault response_rate_limit);
	// 0: none.
	limitKbps uint64
}

// decode runs the HTTP filters for a request from id.
func (h *Handler) decode(id *peer.Identity) verdict {
	var v verdict
	for _, f := range h.filters {
		switch {
		case f.rbac != nil:
			if !f.rbac.Check(id) {
				v.status, v.body = http.StatusForbidden, BodyRBACDenied
			}
		case f.fault != nil:
			f.fault.apply(&v)
		case f.rl != nil:
			f.rl.apply(&v)
		}
		if v.status != 0 {
			break
		}
	}
	return v
}

// ConnIdleTimeout returns the connection manager's idle_timeout for
// downstream connections, and whether it sets one (else the listener's
// default applies). Zero disables it.
func (h *Handler) ConnIdleTimeout() (time.Duration, bool) {
	return h.timeouts.connIdle, h.timeouts.connIdleSet
}

// StatPrefix returns the HCM's stat_prefix.
func (h *Handler) StatPrefix() string { return h.statPrefix }

// Stats returns the HCM's connection gauges and counters, for the listener
// to count the connections it hands over.
func (h *Handler) Stats() (cxTotal *stats.Counter, cxActive *stats.Gauge) {
	return h.stats.cxTotal, h.stats.cxActive
}

// httpStats are named http.<stat_prefix>.<metric> as in Envoy.
type httpStats struct {
	cxTotal          *stats.Counter
	cxActive         *stats.Gauge
	rqTotal          *stats.Counter
	rqHTTP1          *stats.Counter
	rqHTTP2          *stats.Counter
	rqCompleted      *stats.Counter
	rqClass          [6]*stats.Counter
	noRoute          *stats.Counter
	noCluster        *stats.Counter
	rqDirectResponse *stats.Counter
	rqRedirect       *stats.Counter
	rqTime           *stats.Histogram // downstream_rq_time (stats_time.go)
}

func newHTTPStats(reg stats.Registry, prefix string) *httpStats {
	sc := stats.NewScope(reg, "http."+prefix)
	s := &httpStats{
		cxTotal:          sc.Counter("downstream_cx_total"),
		cxActive:         sc.Gauge("downstream_cx_active"),
		rqTotal:          sc.Counter("downstream_rq_total"),
		rqHTTP1:          sc.Counter("downstream_rq_http1_total"),
		rqHTTP2:          sc.Counter("downstream_rq_http2_total"),
		rqCompleted:      sc.Counter("downstream_rq_completed"),
		noRoute:          sc.Counter("no_route"),
		noCluster:        sc.Counter("no_cluster"),
		rqDirectResponse: sc.Counter("rq_direct_response"),
		rqRedirect:       sc.Counter("rq_redirect"),
		rqTime:           sc.Histogram("downstream_rq_time"),
	}
	for i := 1; i <= 5; i++ {
		s.rqClass[i] = sc.Counter("downstream_rq_" + strconv.Itoa(i) + "xx")
	}
	return s
}

// Build checks an HttpConnectionManager and builds its Handler. RDS routes
// come from rds; an inline route_config is compiled against resolve.
func Build(cfg *hcmv3.HttpConnectionManager, rds RouteLookup, resolve Resolver, reg stats.Registry, log *slog.Logger) (*Handler, error) {
	if cfg.GetStatPrefix() == "" {
		return nil, errors.New("stat_prefix is required")
	}
	if ct := cfg.GetCodecType(); ct != hcmv3.HttpConnectionManager_AUTO {
		return nil, fmt.Errorf("codec_type %s is not supported (AUTO only)", ct)
	}
	h := &Handler{statPrefix: cfg.GetStatPrefix(), log: log, reg: reg}
	var err error
	if h.timeouts, err = compileHCMTimeouts(cfg); err != nil {
		return nil, err
	}
	switch {
	case cfg.GetRds() != nil:
		if err := xdsutil.CheckADS(cfg.GetRds().GetConfigSource()); err != nil {
			return nil, fmt.Errorf("rds: %w", err)
		}
		h.rdsName = cfg.GetRds().GetRouteConfigName()
		if h.rdsName == "" {
			return nil, errors.New("rds.route_config_name is required")
		}
		h.routes = rds(h.rdsName)
	case cfg.GetRouteConfig() != nil:
		rt, err := CompileRouteConfiguration(cfg.GetRouteConfig(), resolve)
		if err != nil {
			return nil, fmt.Errorf("route_config: %w", err)
		}
		h.routes = rt
	default:
		return nil, errors.New("rds or route_config is required")
	}
	if err := h.buildHTTPFilters(cfg, reg); err != nil {
		return nil, err
	}
	if h.obs, err = buildObserver(cfg, resolve, reg); err != nil {
		return nil, err
	}
	h.stats = newHTTPStats(reg, h.statPrefix)
	h.registerRetryStats()
	return h, nil
}

// RBACFilterName is the name of the HTTP RBAC filter.
const RBACFilterName = "envoy.filters.http.rbac"

// buildHTTPFilters checks the HTTP filter chain: RBAC, fault and local
// rate limit filters, then the router, last. The filters are built in
// order.
func (h *Handler) buildHTTPFilters(cfg *hcmv3.HttpConnectionManager, reg stats.Registry) error {
	filters := cfg.GetHttpFilters()
	if len(filters) == 0 {
		return errors.New("http_filters must end with " + RouterFilterName)
	}
	for i, f := range filters {
		tc := f.GetTypedConfig()
		last := i == len(filters)-1
		switch {
		case tc == nil && f.GetName() == RouterFilterName, tc != nil && tc.GetTypeUrl() == routerTypeURL:
			if !last {
				return fmt.Errorf("http_filters[%d]: the router filter must be the last HTTP filter", i)
			}
		case tc == nil:
			return fmt.Errorf("http_filters[%d]: HTTP filter %q is not supported by trellis-dp", i, f.GetName())
		case tc.GetTypeUrl() == httpRBACTypeURL:
			var rc httprbacv3.RBAC
			if err := tc.UnmarshalTo(&rc); err != nil {
				return fmt.Errorf("http_filters[%d] (%q): typed_config: %w", i, f.GetName(), err)
			}
			rf, err := rbac.NewFilter(rc.GetRules(), rc.GetShadowRules(), "http."+h.statPrefix, reg, h.log)
			if err != nil {
				return fmt.Errorf("http_filters[%d] (%q): %w", i, f.GetName(), err)
			}
			h.filters = append(h.filters, httpFilter{rbac: rf})
			if last {
				return errors.New("http_filters must end with " + RouterFilterName)
			}
		case tc.GetTypeUrl() == faultTypeURL:
			var fc faultv3.HTTPFault
			if err := tc.UnmarshalTo(&fc); err != nil {
				return fmt.Errorf("http_filters[%d] (%q): typed_config: %w", i, f.GetName(), err)
			}
			ff, err := compileFault(&fc)
			if err != nil {
				return fmt.Errorf("http_filters[%d] (%q): %w", i, f.GetName(), err)
			}
			h.filters = append(h.filters, httpFilter{fault: ff})
			h.netHTTPOnly = h.netHTTPOnly || ff.limitKbps > 0
			if last {
				return errors.New("http_filters must end with " + RouterFilterName)
			}
		case tc.GetTypeUrl() == localRateLimitTypeURL:
			var lc localratelimitv3.LocalRateLimit
			if err := tc.UnmarshalTo(&lc); err != nil {
				return fmt.Errorf("http_filters[%d] (%q): typed_config: %w", i, f.GetName(), err)
			}
			rl, err := compileLocalRateLimit(&lc, reg)
			if err != nil {
				return fmt.Errorf("http_filters[%d] (%q): %w", i, f.GetName(), err)
			}
			h.filters = append(h.filters, httpFilter{rl: rl})
			if last {
				return errors.New("http_filters must end with " + RouterFilterName)
			}
		case allowlist.KnownTypeURL(tc.GetTypeUrl()):
			return fmt.Errorf("http_filters[%d] (%q): typed_config %s is not an HTTP filter", i, f.GetName(), tc.GetTypeUrl())
		default:
			return fmt.Errorf("http_filters[%d] (%q): HTTP filter type %s is not supported by trellis-dp", i, f.GetName(), tc.GetTypeUrl())
		}
	}
	return nil
}
