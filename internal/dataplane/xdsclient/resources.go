package xdsclient

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// resourceWrapperType is the type URL of discovery.v3.Resource, which a
// control plane may wrap a resource in (for a TTL or a heartbeat).
const resourceWrapperType = "type.googleapis.com/envoy.service.discovery.v3.Resource"

// resourceType describes one xDS type the client subscribes to.
type resourceType struct {
	url string
	// short is the name used in stats and logs: lds, rds, cds, eds, sds.
	short string
	// wildcard types subscribe to everything; the others to the names the
	// accepted config references.
	wildcard bool
	// fullState marks types whose SotW responses carry the complete set, so
	// a resource missing from a response is removed (LDS and CDS). For the
	// other types a SotW response only adds or replaces resources.
	fullState bool
}

// resourceTypes lists the subscribed types in the order initial requests
// are sent: clusters and their endpoints before the listeners that use
// them, then routes, then secrets.
var resourceTypes = []resourceType{
	{url: xdsconfig.ClusterType, short: "cds", wildcard: true, fullState: true},
	{url: xdsconfig.EndpointType, short: "eds"},
	{url: xdsconfig.ListenerType, short: "lds", wildcard: true, fullState: true},
	{url: xdsconfig.RouteType, short: "rds"},
	{url: xdsconfig.SecretType, short: "sds"},
}

// typeByURL returns the description of a subscribed type.
func typeByURL(url string) (resourceType, bool) {
	for _, t := range resourceTypes {
		if t.url == url {
			return t, true
		}
	}
	return resourceType{}, false
}

// decodeResource unpacks one resource of a response, which must be of the
// response's type (possibly wrapped in a discovery Resource), and returns
// its name. A wrapper without a resource (a heartbeat) yields a nil
// message and no error.
func decodeResource(typeURL string, a *anypb.Any) (string, proto.Message, error) {
	if a == nil {
		return "", nil, fmt.Errorf("empty resource")
	}
	if a.GetTypeUrl() == resourceWrapperType {
		var wrapper discoveryv3.Resource
		if err := proto.Unmarshal(a.GetValue(), &wrapper); err != nil {
			return "", nil, fmt.Errorf("decoding %s: %w", resourceWrapperType, err)
		}
		if wrapper.GetResource() == nil {
			return wrapper.GetName(), nil, nil
		}
		a = wrapper.GetResource()
	}
	if a.GetTypeUrl() != typeURL {
		return "", nil, fmt.Errorf("type %q in a %s response", a.GetTypeUrl(), typeURL)
	}
	msg := newMessage(typeURL)
	if msg == nil {
		return "", nil, fmt.Errorf("unsupported type %q", typeURL)
	}
	if err := proto.Unmarshal(a.GetValue(), msg); err != nil {
		return "", nil, fmt.Errorf("decoding %s: %w", typeURL, err)
	}
	name := resourceName(msg)
	if name == "" {
		return "", nil, fmt.Errorf("%s without a name", typeURL)
	}
	return name, msg, nil
}

// newMessage returns an empty message of a subscribed type.
func newMessage(typeURL string) proto.Message {
	switch typeURL {
	case xdsconfig.ListenerType:
		return &listenerv3.Listener{}
	case xdsconfig.RouteType:
		return &routev3.RouteConfiguration{}
	case xdsconfig.ClusterType:
		return &clusterv3.Cluster{}
	case xdsconfig.EndpointType:
		return &endpointv3.ClusterLoadAssignment{}
	case xdsconfig.SecretType:
		return &tlsv3.Secret{}
	}
	return nil
}

// resourceName returns the xDS name of a resource.
func resourceName(m proto.Message) string {
	switch r := m.(type) {
	case *endpointv3.ClusterLoadAssignment:
		return r.GetClusterName()
	case interface{ GetName() string }:
		return r.GetName()
	}
	return ""
}

// getResource returns the named resource of a type from cfg, or nil.
func getResource(cfg *xdsconfig.Config, typeURL, name string) proto.Message {
	var m proto.Message
	var ok bool
	switch typeURL {
	case xdsconfig.ListenerType:
		m, ok = cfg.Listeners[name]
	case xdsconfig.RouteType:
		m, ok = cfg.Routes[name]
	case xdsconfig.ClusterType:
		m, ok = cfg.Clusters[name]
	case xdsconfig.EndpointType:
		m, ok = cfg.Endpoints[name]
	case xdsconfig.SecretType:
		m, ok = cfg.Secrets[name]
	}
	if !ok {
		return nil
	}
	return m
}

// putResource stores a decoded resource of its type in cfg.
func putResource(cfg *xdsconfig.Config, name string, m proto.Message) {
	switch r := m.(type) {
	case *listenerv3.Listener:
		cfg.Listeners[name] = r
	case *routev3.RouteConfiguration:
		cfg.Routes[name] = r
	case *clusterv3.Cluster:
		cfg.Clusters[name] = r
	case *endpointv3.ClusterLoadAssignment:
		cfg.Endpoints[name] = r
	case *tlsv3.Secret:
		cfg.Secrets[name] = r
	}
}

// deleteResource removes a resource of a type from cfg.
func deleteResource(cfg *xdsconfig.Config, typeURL, name string) {
	switch typeURL {
	case xdsconfig.ListenerType:
		delete(cfg.Listeners, name)
	case xdsconfig.RouteType:
		delete(cfg.Routes, name)
	case xdsconfig.ClusterType:
		delete(cfg.Clusters, name)
	case xdsconfig.EndpointType:
		delete(cfg.Endpoints, name)
	case xdsconfig.SecretType:
		delete(cfg.Secrets, name)
	}
}

// resourceNames returns the names of all resources of a type in cfg.
func resourceNames(cfg *xdsconfig.Config, typeURL string) []string {
	var out []string
	switch typeURL {
	case xdsconfig.ListenerType:
		out = keys(cfg.Listeners)
	case xdsconfig.RouteType:
		out = keys(cfg.Routes)
	case xdsconfig.ClusterType:
		out = keys(cfg.Clusters)
	case xdsconfig.EndpointType:
		out = keys(cfg.Endpoints)
	case xdsconfig.SecretType:
		out = keys(cfg.Secrets)
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
