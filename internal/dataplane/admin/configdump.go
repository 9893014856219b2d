package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	// The typed configs of the contract, so their Anys render as JSON.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/xdsconfig"
)

// redacted replaces secret material in /config_dump, as Envoy does.
const redacted = "[redacted]"

// configDump answers Envoy's admin ConfigDump of the accepted config.
func (s *Server) configDump(w http.ResponseWriter, _ *http.Request) {
	dump, err := s.buildConfigDump()
	if err == nil {
		var js []byte
		js, err = protojson.MarshalOptions{UseProtoNames: true}.Marshal(dump)
		if err == nil {
			// protojson varies its whitespace on purpose; re-indenting
			// makes the output stable and easy to diff.
			var out bytes.Buffer
			if err = json.Indent(&out, js, "", "  "); err == nil {
				out.WriteByte('\n')
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(out.Bytes())
				return
			}
		}
	}
	s.log.Error("building the config dump", "error", err)
	http.Error(w, "config dump: "+err.Error(), http.StatusInternalServerError)
}

// buildConfigDump assembles the dump: bootstrap, clusters, listeners,
// routes, endpoints, secrets, each sorted by name.
func (s *Server) buildConfigDump() (*adminv3.ConfigDump, error) {
	cfg := s.opts.Config.AcceptedConfig()
	d := &dumper{src: s.opts.Config}
	var parts []proto.Message
	if b := s.opts.Bootstrap; b != nil {
		parts = append(parts, &adminv3.BootstrapConfigDump{Bootstrap: b, LastUpdated: timestamppb.New(s.started)})
	}

	clusters := &adminv3.ClustersConfigDump{VersionInfo: cfg.Versions[xdsconfig.ClusterType]}
	for _, name := range sortedKeys(cfg.Clusters) {
		a, v, t := d.entry(xdsconfig.ClusterType, name, cfg.Clusters[name])
		clusters.DynamicActiveClusters = append(clusters.DynamicActiveClusters, &adminv3.ClustersConfigDump_DynamicCluster{
			VersionInfo: v, Cluster: a, LastUpdated: t, ClientStatus: adminv3.ClientResourceStatus_ACKED,
		})
	}
	listeners := &adminv3.ListenersConfigDump{VersionInfo: cfg.Versions[xdsconfig.ListenerType]}
	for _, name := range sortedKeys(cfg.Listeners) {
		a, v, t := d.entry(xdsconfig.ListenerType, name, cfg.Listeners[name])
		listeners.DynamicListeners = append(listeners.DynamicListeners, &adminv3.ListenersConfigDump_DynamicListener{
			Name:         name,
			ActiveState:  &adminv3.ListenersConfigDump_DynamicListenerState{VersionInfo: v, Listener: a, LastUpdated: t},
			ClientStatus: adminv3.ClientResourceStatus_ACKED,
		})
	}
	routes := &adminv3.RoutesConfigDump{}
	for _, name := range sortedKeys(cfg.Routes) {
		a, v, t := d.entry(xdsconfig.RouteType, name, cfg.Routes[name])
		routes.DynamicRouteConfigs = append(routes.DynamicRouteConfigs, &adminv3.RoutesConfigDump_DynamicRouteConfig{
			VersionInfo: v, RouteConfig: a, LastUpdated: t, ClientStatus: adminv3.ClientResourceStatus_ACKED,
		})
	}
	endpoints := &adminv3.EndpointsConfigDump{}
	for _, name := range sortedKeys(cfg.Endpoints) {
		a, v, t := d.entry(xdsconfig.EndpointType, name, cfg.Endpoints[name])
		endpoints.DynamicEndpointConfigs = append(endpoints.DynamicEndpointConfigs, &adminv3.EndpointsConfigDump_DynamicEndpointConfig{
			VersionInfo: v, EndpointConfig: a, LastUpdated: t, ClientStatus: adminv3.ClientResourceStatus_ACKED,
		})
	}
	secrets := &adminv3.SecretsConfigDump{}
	for _, name := range sortedKeys(cfg.Secrets) {
		a, v, t := d.entry(xdsconfig.SecretType, name, redactSecret(cfg.Secrets[name]))
		secrets.DynamicActiveSecrets = append(secrets.DynamicActiveSecrets, &adminv3.SecretsConfigDump_DynamicSecret{
			Name: name, VersionInfo: v, Secret: a, LastUpdated: t, ClientStatus: adminv3.ClientResourceStatus_ACKED,
		})
	}
	parts = append(parts, clusters, listeners, routes, endpoints, secrets)
	if d.err != nil {
		return nil, d.err
	}

	out := &adminv3.ConfigDump{}
	for _, p := range parts {
		a, err := anypb.New(p)
		if err != nil {
			return nil, fmt.Errorf("packing %T: %w", p, err)
		}
		out.Configs = append(out.Configs, a)
	}
	return out, nil
}

// dumper packs resources and remembers the first error.
type dumper struct {
	src ConfigSource
	err error
}

// entry returns a resource as an Any with its version and update time.
func (d *dumper) entry(typeURL, name string, m proto.Message) (*anypb.Any, string, *timestamppb.Timestamp) {
	a, err := anypb.New(m)
	if err != nil && d.err == nil {
		d.err = fmt.Errorf("packing %s %q: %w", typeURL, name, err)
	}
	version, updated := d.src.ResourceStatus(typeURL, name)
	var ts *timestamppb.Timestamp
	if !updated.IsZero() {
		ts = timestamppb.New(updated.Truncate(time.Millisecond))
	}
	return a, version, ts
}

// redactSecret returns a copy of s without private keys and generic
// secrets.
func redactSecret(s *tlsv3.Secret) *tlsv3.Secret {
	out := proto.Clone(s).(*tlsv3.Secret)
	hide := &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: redacted}}
	if c := out.GetTlsCertificate(); c != nil {
		if c.GetPrivateKey() != nil {
			c.PrivateKey = hide
		}
		if c.GetPassword() != nil {
			c.Password = hide
		}
	}
	if g := out.GetGenericSecret(); g != nil && g.GetSecret() != nil {
		g.Secret = hide
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
