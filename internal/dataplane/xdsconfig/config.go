// Package xdsconfig is the seam between trellis-dp's xDS client and its
// proxy runtime: the client gathers the resources the control plane sends
// into a Config and hands it to an Applier; the runtime validates and
// installs it, or returns an error that the client sends back as a NACK.
package xdsconfig

import (
	"context"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// The xDS type URLs trellis-dp subscribes to.
const (
	ListenerType = resourcev3.ListenerType
	RouteType    = resourcev3.RouteType
	ClusterType  = resourcev3.ClusterType
	EndpointType = resourcev3.EndpointType
	SecretType   = resourcev3.SecretType
)

// Config is the complete set of resources a proxy runs with, keyed by
// resource name. Resources are never mutated after they are put in a
// Config: an update builds a new Config.
type Config struct {
	Listeners map[string]*listenerv3.Listener
	Routes    map[string]*routev3.RouteConfiguration
	Clusters  map[string]*clusterv3.Cluster
	Endpoints map[string]*endpointv3.ClusterLoadAssignment
	Secrets   map[string]*tlsv3.Secret
	// Versions holds the version_info last accepted per type URL.
	Versions map[string]string
}

// New returns an empty Config.
func New() *Config {
	return &Config{
		Listeners: map[string]*listenerv3.Listener{},
		Routes:    map[string]*routev3.RouteConfiguration{},
		Clusters:  map[string]*clusterv3.Cluster{},
		Endpoints: map[string]*endpointv3.ClusterLoadAssignment{},
		Secrets:   map[string]*tlsv3.Secret{},
		Versions:  map[string]string{},
	}
}

// Clone returns a shallow copy: new maps holding the same (immutable)
// resources, ready to take one type's update.
func (c *Config) Clone() *Config {
	out := New()
	for k, v := range c.Listeners {
		out.Listeners[k] = v
	}
	for k, v := range c.Routes {
		out.Routes[k] = v
	}
	for k, v := range c.Clusters {
		out.Clusters[k] = v
	}
	for k, v := range c.Endpoints {
		out.Endpoints[k] = v
	}
	for k, v := range c.Secrets {
		out.Secrets[k] = v
	}
	for k, v := range c.Versions {
		out.Versions[k] = v
	}
	return out
}

// Applier validates and installs a complete Config. It returns an error,
// naming the resource and the field, when the Config uses anything the
// runtime does not implement or is inconsistent; the runtime then keeps
// running its previous Config. A Config may reference resources that have
// not arrived yet (a listener naming a cluster whose CDS/EDS is still on
// its way): that is not an error; traffic to it fails until it arrives.
type Applier interface {
	Apply(ctx context.Context, cfg *Config) error
}
