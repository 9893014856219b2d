package build

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// MeshHTTPRoute and MeshTCPRoute (docs/xds-contract.md): the outbound's
// routes (Outbound.HTTPRoutes) replace its default route, its TCP
// backends (Outbound.TCPBackends) its tcp_proxy cluster, and the clusters
// they name (Outbound.RouteClusters) are added by routeClusters. The
// plugin runs first (Order 10) so that the plugins after it (timeouts,
// retries, hash policies) see the final routes.
func init() {
	register(Plugin{
		Name:             "MeshHTTPRoute",
		Order:            10,
		OutboundRoute:    routeOutboundRoutes,
		OutboundTCPProxy: routeOutboundTCPProxy,
	})
}

// routeOutboundRoutes replaces the routes of an HTTP outbound that has
// MeshHTTPRoute routes.
func routeOutboundRoutes(_ *proxymodel.Proxy, out *proxymodel.Outbound, rc *routev3.RouteConfiguration) error {
	if out.HTTPRoutes == nil || len(rc.GetVirtualHosts()) == 0 {
		return nil
	}
	routes := make([]*routev3.Route, 0, len(out.HTTPRoutes))
	for i := range out.HTTPRoutes {
		r, err := httpRoute(&out.HTTPRoutes[i])
		if err != nil {
			return fmt.Errorf("route %d: %w", i, err)
		}
		routes = append(routes, r)
	}
	rc.VirtualHosts[0].Routes = routes
	return nil
}

// routeOutboundTCPProxy splits a TCP outbound's connections over its
// MeshTCPRoute backends.
func routeOutboundTCPProxy(_ *proxymodel.Proxy, out *proxymodel.Outbound, tp *tcpv3.TcpProxy) error {
	switch len(out.TCPBackends) {
	case 0:
		return nil
	case 1:
		tp.ClusterSpecifier = &tcpv3.TcpProxy_Cluster{Cluster: out.TCPBackends[0].Cluster}
		return nil
	}
	wc := &tcpv3.TcpProxy_WeightedCluster{}
	for _, b := range out.TCPBackends {
		wc.Clusters = append(wc.Clusters, &tcpv3.TcpProxy_WeightedCluster_ClusterWeight{Name: b.Cluster, Weight: b.Weight})
	}
	tp.ClusterSpecifier = &tcpv3.TcpProxy_WeightedClusters{WeightedClusters: wc}
	return nil
}

// routeClusters adds the clusters an outbound's routes name besides its
// own: each once per proxy, and none named after a service the proxy has
// an outbound to (that outbound makes it). They go through
// outboundCluster, so cluster plugins and mTLS apply as to the outbound's
// own cluster (a cluster of another service with that service's policies
// and identity).
func (r *Resources) routeClusters(p *proxymodel.Proxy, out *proxymodel.Outbound) error {
	for i := range out.RouteClusters {
		rc := &out.RouteClusters[i]
		if r.hasCluster(rc.Name) || proxyHasOutbound(p, rc.Name) {
			continue
		}
		owner := out
		if rc.Service != out.Service || rc.Protocol != out.Protocol {
			owner = &proxymodel.Outbound{Address: out.Address, Port: out.Port, Service: rc.Service, Protocol: rc.Protocol, Endpoints: rc.Endpoints}
		}
		if err := r.outboundCluster(p, owner, edsCluster(rc.Name, rc.Protocol), loadAssignment(rc.Name, rc.Endpoints)); err != nil {
			return fmt.Errorf("cluster %s: %w", rc.Name, err)
		}
	}
	return nil
}

func (r *Resources) hasCluster(name string) bool {
	for _, c := range r.Clusters {
		if c.GetName() == name {
			return true
		}
	}
	return false
}

func proxyHasOutbound(p *proxymodel.Proxy, service string) bool {
	for i := range p.Outbounds {
		if p.Outbounds[i].Service == service {
			return true
		}
	}
	return false
}

// httpRoute builds one route: its match, header changes, and a redirect
// or a route action (cluster or weighted clusters, rewrites, mirrors).
func httpRoute(hr *proxymodel.HTTPRoute) (*routev3.Route, error) {
	m, err := routeMatch(&hr.Match)
	if err != nil {
		return nil, err
	}
	r := &routev3.Route{Match: m}
	r.RequestHeadersToAdd, r.RequestHeadersToRemove = headerOptions(hr.RequestHeaders)
	r.ResponseHeadersToAdd, r.ResponseHeadersToRemove = headerOptions(hr.ResponseHeaders)
	if hr.Redirect != nil {
		rd, err := redirectAction(hr.Redirect)
		if err != nil {
			return nil, err
		}
		r.Action = &routev3.Route_Redirect{Redirect: rd}
		return r, nil
	}
	a := &routev3.RouteAction{Timeout: durationpb.New(routeTimeout)}
	switch len(hr.Backends) {
	case 0:
		return nil, fmt.Errorf("no backend")
	case 1:
		a.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: hr.Backends[0].Cluster}
	default:
		wc := &routev3.WeightedCluster{}
		for _, b := range hr.Backends {
			wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{Name: b.Cluster, Weight: wrapperspb.UInt32(b.Weight)})
		}
		a.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}
	}
	if rw := hr.Rewrite; rw != nil {
		if rw.Host != "" {
			a.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: rw.Host}
		}
		switch {
		case rw.HasPrefixRewrite:
			a.PrefixRewrite = rw.PrefixRewrite
		case rw.RegexPattern != "":
			a.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{
				Pattern:      &matcherv3.RegexMatcher{Regex: rw.RegexPattern},
				Substitution: rw.RegexSubstitution,
			}
		}
	}
	for _, mr := range hr.Mirrors {
		p := &routev3.RouteAction_RequestMirrorPolicy{Cluster: mr.Cluster}
		if mr.Denominator != 0 {
			d, err := fractionDenominator(mr.Denominator)
			if err != nil {
				return nil, err
			}
			p.RuntimeFraction = &corev3.RuntimeFractionalPercent{
				DefaultValue: &typev3.FractionalPercent{Numerator: mr.Numerator, Denominator: d},
			}
		}
		a.RequestMirrorPolicies = append(a.RequestMirrorPolicies, p)
	}
	r.Action = &routev3.Route_Route{Route: a}
	return r, nil
}

func fractionDenominator(d uint32) (typev3.FractionalPercent_DenominatorType, error) {
	switch d {
	case 100:
		return typev3.FractionalPercent_HUNDRED, nil
	case 10000:
		return typev3.FractionalPercent_TEN_THOUSAND, nil
	case 1000000:
		return typev3.FractionalPercent_MILLION, nil
	}
	return 0, fmt.Errorf("mirror denominator %d is not 100, 10000 or 1000000", d)
}

// routeMatch builds a RouteMatch: path (Exact), prefix "/" or
// path_separated_prefix (PathPrefix), safe_regex (RegularExpression);
// the method as a ":method" header; headers and query parameters.
func routeMatch(m *proxymodel.HTTPMatch) (*routev3.RouteMatch, error) {
	rm := &routev3.RouteMatch{}
	switch m.PathType {
	case proxymodel.PathExact:
		rm.PathSpecifier = &routev3.RouteMatch_Path{Path: m.Path}
	case proxymodel.PathPrefix, "":
		if m.Path == "" || m.Path == "/" {
			rm.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/"}
		} else {
			rm.PathSpecifier = &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: m.Path}
		}
	case proxymodel.PathRegex:
		rm.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: m.Path}}
	default:
		return nil, fmt.Errorf("path match type %q is not supported", m.PathType)
	}
	if m.Method != "" {
		rm.Headers = append(rm.Headers, &routev3.HeaderMatcher{
			Name:                 ":method",
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exactString(m.Method)},
		})
	}
	for _, h := range m.Headers {
		hm := &routev3.HeaderMatcher{Name: h.Name}
		switch h.Type {
		case proxymodel.MatchExact, "":
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: exactString(h.Value)}
		case proxymodel.MatchRegex:
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: regexString(h.Value)}
		case proxymodel.MatchPrefix:
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: h.Value},
			}}
		case proxymodel.MatchPresent:
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		case proxymodel.MatchAbsent:
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
			hm.InvertMatch = true
		default:
			return nil, fmt.Errorf("header match type %q is not supported", h.Type)
		}
		rm.Headers = append(rm.Headers, hm)
	}
	for _, q := range m.QueryParams {
		qm := &routev3.QueryParameterMatcher{Name: q.Name}
		switch q.Type {
		case proxymodel.MatchExact, "":
			qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_StringMatch{StringMatch: exactString(q.Value)}
		case proxymodel.MatchRegex:
			qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_StringMatch{StringMatch: regexString(q.Value)}
		case proxymodel.MatchPresent:
			qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}
		default:
			return nil, fmt.Errorf("query parameter match type %q is not supported", q.Type)
		}
		rm.QueryParameters = append(rm.QueryParameters, qm)
	}
	return rm, nil
}

func exactString(v string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}
}

func regexString(re string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: re}}}
}

// headerOptions turns header changes into header_value_options (a
// replacing value OVERWRITE_IF_EXISTS_OR_ADD, others
// APPEND_IF_EXISTS_OR_ADD, the default) and names to remove.
func headerOptions(hc proxymodel.HeaderChanges) ([]*corev3.HeaderValueOption, []string) {
	var opts []*corev3.HeaderValueOption
	for _, h := range hc.Add {
		o := &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: h.Name, Value: h.Value}}
		if h.Replace {
			o.AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		}
		opts = append(opts, o)
	}
	return opts, append([]string(nil), hc.Remove...)
}

var redirectCodes = map[int]routev3.RedirectAction_RedirectResponseCode{
	301: routev3.RedirectAction_MOVED_PERMANENTLY,
	302: routev3.RedirectAction_FOUND,
	303: routev3.RedirectAction_SEE_OTHER,
	307: routev3.RedirectAction_TEMPORARY_REDIRECT,
	308: routev3.RedirectAction_PERMANENT_REDIRECT,
}

func redirectAction(rd *proxymodel.Redirect) (*routev3.RedirectAction, error) {
	code, ok := redirectCodes[rd.Status]
	if !ok {
		return nil, fmt.Errorf("redirect status %d is not supported", rd.Status)
	}
	a := &routev3.RedirectAction{ResponseCode: code, HostRedirect: rd.Host, PortRedirect: rd.Port}
	if rd.Scheme != "" {
		a.SchemeRewriteSpecifier = &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: rd.Scheme}
	}
	switch {
	case rd.HasPrefixRewrite:
		a.PathRewriteSpecifier = &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: rd.PrefixRewrite}
	case rd.Path != "":
		a.PathRewriteSpecifier = &routev3.RedirectAction_PathRedirect{PathRedirect: rd.Path}
	}
	return a, nil
}
