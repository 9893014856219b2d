// Package allowlist checks Envoy v3 resources against the fields trellis-dp
// implements (docs/xds-contract.md). It walks every populated field of a
// message with protoreflect, recursing into messages, lists, maps and the
// google.protobuf.Any values of typed_config fields after unpacking the
// types it knows, and reports every field outside the list.
//
// The check is deliberately an allow-list: a field trellis-dp would
// silently ignore is a behaviour the control plane asked for and did not
// get, so it is rejected (and the xDS client NACKs it) instead.
package allowlist

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	httprbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	networkrbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// fields is the allow-list: the full names of the fields trellis-dp
// implements. Keep it in step with docs/xds-contract.md.
var fields = names(
	// Listener.
	"envoy.config.listener.v3.Listener.name",
	"envoy.config.listener.v3.Listener.address",
	"envoy.config.listener.v3.Listener.traffic_direction",
	"envoy.config.listener.v3.Listener.filter_chains",
	"envoy.config.listener.v3.FilterChain.name",
	"envoy.config.listener.v3.FilterChain.filters",
	"envoy.config.listener.v3.Filter.name",
	"envoy.config.listener.v3.Filter.typed_config",
	"envoy.config.core.v3.Address.socket_address",
	"envoy.config.core.v3.SocketAddress.address",
	"envoy.config.core.v3.SocketAddress.port_value",

	// tcp_proxy.
	"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.stat_prefix",
	"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.cluster",
	"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.weighted_clusters",
	"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster.clusters",
	"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster.ClusterWeight.name",
	"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster.ClusterWeight.weight",

	// http_connection_manager and its router filter.
	"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.stat_prefix",
	"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.codec_type",
	"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.rds",
	"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.route_config",
	"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.http_filters",
	"envoy.extensions.filters.network.http_connection_manager.v3.Rds.route_config_name",
	"envoy.extensions.filters.network.http_connection_manager.v3.Rds.config_source",
	"envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter.name",
	"envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter.typed_config",
	"envoy.config.core.v3.ConfigSource.ads",
	"envoy.config.core.v3.ConfigSource.resource_api_version",

	// RouteConfiguration.
	"envoy.config.route.v3.RouteConfiguration.name",
	"envoy.config.route.v3.RouteConfiguration.virtual_hosts",
	"envoy.config.route.v3.VirtualHost.name",
	"envoy.config.route.v3.VirtualHost.domains",
	"envoy.config.route.v3.VirtualHost.routes",
	"envoy.config.route.v3.Route.name",
	"envoy.config.route.v3.Route.match",
	"envoy.config.route.v3.Route.route",
	"envoy.config.route.v3.Route.redirect",
	"envoy.config.route.v3.Route.direct_response",
	"envoy.config.route.v3.RouteMatch.prefix",
	"envoy.config.route.v3.RouteMatch.path",
	"envoy.config.route.v3.RouteMatch.safe_regex",
	"envoy.config.route.v3.RouteMatch.headers",
	"envoy.config.route.v3.HeaderMatcher.name",
	"envoy.config.route.v3.HeaderMatcher.string_match",
	"envoy.config.route.v3.HeaderMatcher.present_match",
	"envoy.config.route.v3.HeaderMatcher.invert_match",
	"envoy.type.matcher.v3.StringMatcher.exact",
	"envoy.type.matcher.v3.StringMatcher.prefix",
	"envoy.type.matcher.v3.StringMatcher.suffix",
	"envoy.type.matcher.v3.StringMatcher.contains",
	"envoy.type.matcher.v3.StringMatcher.safe_regex",
	"envoy.type.matcher.v3.StringMatcher.ignore_case",
	"envoy.type.matcher.v3.RegexMatcher.regex",
	"envoy.type.matcher.v3.RegexMatcher.google_re2",
	"envoy.config.route.v3.RouteAction.cluster",
	"envoy.config.route.v3.RouteAction.weighted_clusters",
	"envoy.config.route.v3.RouteAction.timeout",
	"envoy.config.route.v3.WeightedCluster.clusters",
	"envoy.config.route.v3.WeightedCluster.ClusterWeight.name",
	"envoy.config.route.v3.WeightedCluster.ClusterWeight.weight",
	"envoy.config.route.v3.DirectResponseAction.status",
	"envoy.config.route.v3.DirectResponseAction.body",
	"envoy.config.core.v3.DataSource.inline_string",
	"envoy.config.core.v3.DataSource.inline_bytes",
	"envoy.config.route.v3.RedirectAction.https_redirect",
	"envoy.config.route.v3.RedirectAction.scheme_redirect",
	"envoy.config.route.v3.RedirectAction.host_redirect",
	"envoy.config.route.v3.RedirectAction.port_redirect",
	"envoy.config.route.v3.RedirectAction.path_redirect",
	"envoy.config.route.v3.RedirectAction.prefix_rewrite",
	"envoy.config.route.v3.RedirectAction.response_code",
	"envoy.config.route.v3.RedirectAction.strip_query",

	// Cluster.
	"envoy.config.cluster.v3.Cluster.name",
	"envoy.config.cluster.v3.Cluster.type",
	"envoy.config.cluster.v3.Cluster.eds_cluster_config",
	"envoy.config.cluster.v3.Cluster.load_assignment",
	"envoy.config.cluster.v3.Cluster.connect_timeout",
	"envoy.config.cluster.v3.Cluster.lb_policy",
	"envoy.config.cluster.v3.Cluster.typed_extension_protocol_options",
	"envoy.config.cluster.v3.Cluster.EdsClusterConfig.eds_config",
	"envoy.config.cluster.v3.Cluster.EdsClusterConfig.service_name",
	"envoy.extensions.upstreams.http.v3.HttpProtocolOptions.explicit_http_config",
	"envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig.http_protocol_options",
	"envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig.http2_protocol_options",

	// ClusterLoadAssignment.
	"envoy.config.endpoint.v3.ClusterLoadAssignment.cluster_name",
	"envoy.config.endpoint.v3.ClusterLoadAssignment.endpoints",
	"envoy.config.endpoint.v3.LocalityLbEndpoints.locality",
	"envoy.config.endpoint.v3.LocalityLbEndpoints.lb_endpoints",
	"envoy.config.endpoint.v3.LocalityLbEndpoints.load_balancing_weight",
	"envoy.config.core.v3.Locality.region",
	"envoy.config.core.v3.Locality.zone",
	"envoy.config.core.v3.Locality.sub_zone",
	"envoy.config.endpoint.v3.LbEndpoint.endpoint",
	"envoy.config.endpoint.v3.LbEndpoint.health_status",
	"envoy.config.endpoint.v3.LbEndpoint.load_balancing_weight",
	"envoy.config.endpoint.v3.Endpoint.address",

	// mTLS: listener filter chains with a TLS transport socket, the TLS
	// inspector, upstream TLS.
	"envoy.config.listener.v3.Listener.listener_filters",
	"envoy.config.listener.v3.ListenerFilter.name",
	"envoy.config.listener.v3.ListenerFilter.typed_config",
	"envoy.config.listener.v3.FilterChain.filter_chain_match",
	"envoy.config.listener.v3.FilterChain.transport_socket",
	"envoy.config.listener.v3.FilterChainMatch.transport_protocol",
	"envoy.config.cluster.v3.Cluster.transport_socket",
	"envoy.config.core.v3.TransportSocket.name",
	"envoy.config.core.v3.TransportSocket.typed_config",
	"envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext.common_tls_context",
	"envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext.require_client_certificate",
	"envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext.common_tls_context",
	"envoy.extensions.transport_sockets.tls.v3.CommonTlsContext.tls_params",
	"envoy.extensions.transport_sockets.tls.v3.CommonTlsContext.tls_certificate_sds_secret_configs",
	"envoy.extensions.transport_sockets.tls.v3.CommonTlsContext.combined_validation_context",
	"envoy.extensions.transport_sockets.tls.v3.CommonTlsContext.alpn_protocols",
	"envoy.extensions.transport_sockets.tls.v3.CommonTlsContext.CombinedCertificateValidationContext.default_validation_context",
	"envoy.extensions.transport_sockets.tls.v3.CommonTlsContext.CombinedCertificateValidationContext.validation_context_sds_secret_config",
	"envoy.extensions.transport_sockets.tls.v3.TlsParameters.tls_minimum_protocol_version",
	"envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext.match_typed_subject_alt_names",
	"envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext.trusted_ca",
	"envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher.san_type",
	"envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher.matcher",
	"envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig.name",
	"envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig.sds_config",

	// Secret (SDS).
	"envoy.extensions.transport_sockets.tls.v3.Secret.name",
	"envoy.extensions.transport_sockets.tls.v3.Secret.tls_certificate",
	"envoy.extensions.transport_sockets.tls.v3.Secret.validation_context",
	"envoy.extensions.transport_sockets.tls.v3.TlsCertificate.certificate_chain",
	"envoy.extensions.transport_sockets.tls.v3.TlsCertificate.private_key",

	// RBAC: network and HTTP filters, principals by peer identity.
	"envoy.extensions.filters.network.rbac.v3.RBAC.stat_prefix",
	"envoy.extensions.filters.network.rbac.v3.RBAC.rules",
	"envoy.extensions.filters.network.rbac.v3.RBAC.shadow_rules",
	"envoy.extensions.filters.http.rbac.v3.RBAC.rules",
	"envoy.extensions.filters.http.rbac.v3.RBAC.shadow_rules",
	"envoy.config.rbac.v3.RBAC.action",
	"envoy.config.rbac.v3.RBAC.policies",
	"envoy.config.rbac.v3.Policy.permissions",
	"envoy.config.rbac.v3.Policy.principals",
	"envoy.config.rbac.v3.Permission.any",
	"envoy.config.rbac.v3.Principal.any",
	"envoy.config.rbac.v3.Principal.authenticated",
	"envoy.config.rbac.v3.Principal.and_ids",
	"envoy.config.rbac.v3.Principal.or_ids",
	"envoy.config.rbac.v3.Principal.not_id",
	"envoy.config.rbac.v3.Principal.Set.ids",
	"envoy.config.rbac.v3.Principal.Authenticated.principal_name",

	// Well-known value types.
	"google.protobuf.Duration.seconds",
	"google.protobuf.Duration.nanos",
	"google.protobuf.UInt32Value.value",
	"google.protobuf.BoolValue.value",
)

// typedConfigs are the google.protobuf.Any payloads trellis-dp unpacks,
// keyed by type URL.
var typedConfigs = map[string]func() proto.Message{
	typeURL(&tlsv3.DownstreamTlsContext{}):         func() proto.Message { return new(tlsv3.DownstreamTlsContext) },
	typeURL(&tlsv3.UpstreamTlsContext{}):           func() proto.Message { return new(tlsv3.UpstreamTlsContext) },
	typeURL(&tlsinspectorv3.TlsInspector{}):        func() proto.Message { return new(tlsinspectorv3.TlsInspector) },
	typeURL(&networkrbacv3.RBAC{}):                 func() proto.Message { return new(networkrbacv3.RBAC) },
	typeURL(&httprbacv3.RBAC{}):                    func() proto.Message { return new(httprbacv3.RBAC) },
	typeURL(&tcpproxyv3.TcpProxy{}):                func() proto.Message { return new(tcpproxyv3.TcpProxy) },
	typeURL(&hcmv3.HttpConnectionManager{}):        func() proto.Message { return new(hcmv3.HttpConnectionManager) },
	typeURL(&routerv3.Router{}):                    func() proto.Message { return new(routerv3.Router) },
	typeURL(&upstreamhttpv3.HttpProtocolOptions{}): func() proto.Message { return new(upstreamhttpv3.HttpProtocolOptions) },
}

const anyName protoreflect.FullName = "google.protobuf.Any"

func typeURL(m proto.Message) string {
	return "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName())
}

func names(list ...string) map[protoreflect.FullName]bool {
	out := make(map[protoreflect.FullName]bool, len(list))
	for _, n := range list {
		out[protoreflect.FullName(n)] = true
	}
	return out
}

// allow adds fields to the allow-list. The features trellis-dp gained with
// the traffic policies each list their fields in a file of their own
// (fields_<feature>.go) from init, so the list grows without one file
// every change touches.
func allow(list ...string) {
	for _, n := range list {
		fields[protoreflect.FullName(n)] = true
	}
}

// allowType adds typed_config payload types trellis-dp unpacks, from init
// like allow.
func allowType(msgs ...proto.Message) {
	for _, m := range msgs {
		typedConfigs[typeURL(m)] = func() proto.Message { return m.ProtoReflect().New().Interface() }
	}
}

// Allowed reports whether the field with the given full name is on the
// allow-list.
func Allowed(field protoreflect.FullName) bool { return fields[field] }

// AllowedFields returns the allow-list, sorted.
func AllowedFields() []protoreflect.FullName {
	out := make([]protoreflect.FullName, 0, len(fields))
	for n := range fields {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// KnownTypeURL reports whether typed_config payloads of this type URL are
// understood.
func KnownTypeURL(url string) bool { _, ok := typedConfigs[url]; return ok }

// Error is one violation of the allow-list.
type Error struct {
	// Path is where the field sits in the resource, in proto field names:
	// filter_chains[0].filters[0].typed_config.idle_timeout.
	Path string
	// Field is the full name of the offending field; empty for an unknown
	// typed_config type or unknown fields.
	Field protoreflect.FullName
	// TypeURL is set for an unsupported google.protobuf.Any payload.
	TypeURL string
	// Unknown is set when the message carries fields its descriptor does
	// not know (a newer Envoy API than trellis-dp was built with).
	Unknown bool
	// Err is set when a known typed_config payload does not decode.
	Err error
}

func (e *Error) Error() string {
	var msg string
	switch {
	case e.TypeURL != "" && e.Err != nil:
		msg = fmt.Sprintf("typed_config %s does not decode: %v", e.TypeURL, e.Err)
	case e.TypeURL != "":
		msg = fmt.Sprintf("typed_config type %s is not supported by trellis-dp", e.TypeURL)
	case e.Unknown:
		msg = "message has fields unknown to trellis-dp"
	default:
		msg = fmt.Sprintf("field %s is not supported by trellis-dp", e.Field)
	}
	if e.Path != "" && (e.Field == "" || strings.ContainsAny(e.Path, ".[")) {
		msg += " (at " + e.Path + ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Check returns every allow-list violation in m, sorted by path. It returns
// nil for a message that only uses allowed fields.
func Check(m proto.Message) []*Error {
	var w walker
	w.message(m.ProtoReflect(), "")
	slices.SortStableFunc(w.errs, func(a, b *Error) int { return strings.Compare(a.Path, b.Path) })
	return w.errs
}

type walker struct{ errs []*Error }

func (w *walker) message(m protoreflect.Message, path string) {
	if m.Descriptor().FullName() == anyName {
		w.any(m, path)
		return
	}
	if len(m.GetUnknown()) > 0 {
		w.errs = append(w.errs, &Error{Path: path, Unknown: true})
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := join(path, string(fd.Name()))
		if !fields[fd.FullName()] {
			w.errs = append(w.errs, &Error{Path: p, Field: fd.FullName()})
			return true
		}
		switch {
		case fd.IsList():
			if fd.Message() == nil {
				return true
			}
			l := v.List()
			for i := range l.Len() {
				w.message(l.Get(i).Message(), p+"["+strconv.Itoa(i)+"]")
			}
		case fd.IsMap():
			if fd.MapValue().Message() == nil {
				return true
			}
			var keys []protoreflect.MapKey
			v.Map().Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			slices.SortFunc(keys, func(a, b protoreflect.MapKey) int { return strings.Compare(a.String(), b.String()) })
			for _, k := range keys {
				w.message(v.Map().Get(k).Message(), p+"["+strconv.Quote(k.String())+"]")
			}
		case fd.Message() != nil:
			w.message(v.Message(), p)
		}
		return true
	})
}

// any unpacks a google.protobuf.Any of a known type and walks it.
func (w *walker) any(m protoreflect.Message, path string) {
	fds := m.Descriptor().Fields()
	url := m.Get(fds.ByName("type_url")).String()
	newMsg, ok := typedConfigs[url]
	if !ok {
		w.errs = append(w.errs, &Error{Path: path, TypeURL: url})
		return
	}
	inner := newMsg()
	if err := proto.Unmarshal(m.Get(fds.ByName("value")).Bytes(), inner); err != nil {
		w.errs = append(w.errs, &Error{Path: path, TypeURL: url, Err: err})
		return
	}
	w.message(inner.ProtoReflect(), path)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
