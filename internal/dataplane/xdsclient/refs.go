package xdsclient

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// Type URLs of the nested configs the client looks into for references.
var (
	hcmType        = "type.googleapis.com/" + string((&hcmv3.HttpConnectionManager{}).ProtoReflect().Descriptor().FullName())
	upstreamTLS    = "type.googleapis.com/" + string((&tlsv3.UpstreamTlsContext{}).ProtoReflect().Descriptor().FullName())
	downstreamTLS  = "type.googleapis.com/" + string((&tlsv3.DownstreamTlsContext{}).ProtoReflect().Descriptor().FullName())
	referenceFuncs = map[string]func(*xdsconfig.Config) set{
		xdsconfig.EndpointType: edsNames,
		xdsconfig.RouteType:    rdsNames,
		xdsconfig.SecretType:   sdsNames,
	}
)

// set is a set of resource names.
type set map[string]struct{}

func (s set) add(name string) {
	if name != "" {
		s[name] = struct{}{}
	}
}

func (s set) has(name string) bool {
	_, ok := s[name]
	return ok
}

func (s set) equal(o set) bool {
	if len(s) != len(o) {
		return false
	}
	for k := range s {
		if !o.has(k) {
			return false
		}
	}
	return true
}

// minus returns the names in s that are not in o, in no particular order.
func (s set) minus(o set) []string {
	var out []string
	for k := range s {
		if !o.has(k) {
			out = append(out, k)
		}
	}
	return out
}

// wantedNames returns the names of a non-wildcard type that cfg references:
// the subscription for that type.
func wantedNames(cfg *xdsconfig.Config, typeURL string) set {
	if f := referenceFuncs[typeURL]; f != nil {
		return f(cfg)
	}
	return set{}
}

// edsNames returns the EDS service names of the EDS clusters in cfg.
func edsNames(cfg *xdsconfig.Config) set {
	out := set{}
	for name, c := range cfg.Clusters {
		if c.GetType() != clusterv3.Cluster_EDS {
			continue
		}
		if sn := c.GetEdsClusterConfig().GetServiceName(); sn != "" {
			out.add(sn)
		} else {
			out.add(name)
		}
	}
	return out
}

// rdsNames returns the route configurations that the listeners' HTTP
// connection managers load over RDS.
func rdsNames(cfg *xdsconfig.Config) set {
	out := set{}
	for _, l := range cfg.Listeners {
		forEachFilterChain(l, func(fc *listenerv3.FilterChain) {
			for _, f := range fc.GetFilters() {
				var hcm hcmv3.HttpConnectionManager
				if unpack(f.GetTypedConfig(), hcmType, &hcm) {
					out.add(hcm.GetRds().GetRouteConfigName())
				}
			}
		})
	}
	return out
}

// sdsNames returns the secrets that the TLS contexts of listeners and
// clusters load over ADS.
func sdsNames(cfg *xdsconfig.Config) set {
	out := set{}
	for _, l := range cfg.Listeners {
		forEachFilterChain(l, func(fc *listenerv3.FilterChain) {
			var dtc tlsv3.DownstreamTlsContext
			if unpack(fc.GetTransportSocket().GetTypedConfig(), downstreamTLS, &dtc) {
				addSecretRefs(out, dtc.GetCommonTlsContext())
			}
		})
	}
	for _, c := range cfg.Clusters {
		sockets := []*corev3.TransportSocket{c.GetTransportSocket()}
		for _, m := range c.GetTransportSocketMatches() {
			sockets = append(sockets, m.GetTransportSocket())
		}
		for _, ts := range sockets {
			var utc tlsv3.UpstreamTlsContext
			if unpack(ts.GetTypedConfig(), upstreamTLS, &utc) {
				addSecretRefs(out, utc.GetCommonTlsContext())
			}
		}
	}
	return out
}

// addSecretRefs adds the SDS secrets of a TLS context that come over ADS.
// A reference without a config source names a static secret of the
// bootstrap, which trellis-dp does not have; the runtime rejects those.
func addSecretRefs(out set, ctx *tlsv3.CommonTlsContext) {
	refs := append([]*tlsv3.SdsSecretConfig{}, ctx.GetTlsCertificateSdsSecretConfigs()...)
	refs = append(refs, ctx.GetValidationContextSdsSecretConfig(),
		ctx.GetCombinedValidationContext().GetValidationContextSdsSecretConfig())
	for _, r := range refs {
		if r.GetSdsConfig().GetAds() != nil {
			out.add(r.GetName())
		}
	}
}

func forEachFilterChain(l *listenerv3.Listener, f func(*listenerv3.FilterChain)) {
	for _, fc := range l.GetFilterChains() {
		f(fc)
	}
	if fc := l.GetDefaultFilterChain(); fc != nil {
		f(fc)
	}
}

// unpack decodes a of the given type into m; false when a is of another
// type or does not decode (the runtime reports those).
func unpack(a *anypb.Any, typeURL string, m proto.Message) bool {
	if a == nil || a.GetTypeUrl() != typeURL {
		return false
	}
	return proto.Unmarshal(a.GetValue(), m) == nil
}
