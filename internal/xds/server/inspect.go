package server

import (
	"context"
	"encoding/json"
	"fmt"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/trellis-mesh/trellis/internal/xds/build"
)

// ConfigDump returns the xDS the control plane generates for a Dataplane,
// as Kuma's inspect API does: {"xds": <Envoy admin ConfigDump>}. A missing
// Dataplane gives an error wrapping store.ErrNotFound.
func (s *Server) ConfigDump(ctx context.Context, mesh, name string) ([]byte, error) {
	if _, err := s.mgr.Get(ctx, s.dpDesc(), mesh, name); err != nil {
		return nil, err
	}
	ms, err := loadMesh(ctx, s.mgr, s.ca, s.recon.cache.vips, mesh)
	if err != nil {
		return nil, err
	}
	s.addZones(ctx, ms.ix) // cross-zone endpoints, as the reconciler's (zoneproxy.go)
	res, _, err := generate(ms, name, false, s.dnsPortOf(proxyKey{Mesh: mesh, Name: name}))
	if err != nil {
		return nil, err
	}
	dump, err := configDump(res)
	if err != nil {
		return nil, err
	}
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(dump)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]json.RawMessage{"xds": js})
}

func configDump(r *build.Resources) (*adminv3.ConfigDump, error) {
	hashed, err := newOutput(r)
	if err != nil {
		return nil, err
	}
	versions := hashed.versions()
	pack := func(m proto.Message) (*anypb.Any, error) {
		a, err := anypb.New(m)
		if err != nil {
			return nil, fmt.Errorf("packing %T: %w", m, err)
		}
		return a, nil
	}
	var ld adminv3.ListenersConfigDump
	for _, l := range r.Listeners {
		a, err := pack(l)
		if err != nil {
			return nil, err
		}
		ld.DynamicListeners = append(ld.DynamicListeners, &adminv3.ListenersConfigDump_DynamicListener{
			Name:        l.Name,
			ActiveState: &adminv3.ListenersConfigDump_DynamicListenerState{VersionInfo: versions[listenerType], Listener: a},
		})
	}
	var cd adminv3.ClustersConfigDump
	for _, c := range r.Clusters {
		a, err := pack(c)
		if err != nil {
			return nil, err
		}
		cd.DynamicActiveClusters = append(cd.DynamicActiveClusters, &adminv3.ClustersConfigDump_DynamicCluster{VersionInfo: versions[clusterType], Cluster: a})
	}
	var rd adminv3.RoutesConfigDump
	for _, rc := range r.Routes {
		a, err := pack(rc)
		if err != nil {
			return nil, err
		}
		rd.DynamicRouteConfigs = append(rd.DynamicRouteConfigs, &adminv3.RoutesConfigDump_DynamicRouteConfig{VersionInfo: versions[routeType], RouteConfig: a})
	}
	var ed adminv3.EndpointsConfigDump
	for _, e := range r.Endpoints {
		a, err := pack(e)
		if err != nil {
			return nil, err
		}
		ed.DynamicEndpointConfigs = append(ed.DynamicEndpointConfigs, &adminv3.EndpointsConfigDump_DynamicEndpointConfig{VersionInfo: versions[endpointType], EndpointConfig: a})
	}
	var sd adminv3.SecretsConfigDump
	for _, sec := range r.Secrets {
		a, err := pack(redacted(sec))
		if err != nil {
			return nil, err
		}
		sd.DynamicActiveSecrets = append(sd.DynamicActiveSecrets, &adminv3.SecretsConfigDump_DynamicSecret{
			Name: sec.Name, VersionInfo: versions[secretType], Secret: a,
		})
	}
	out := &adminv3.ConfigDump{}
	for _, m := range []proto.Message{&ld, &cd, &rd, &ed, &sd} {
		a, err := pack(m)
		if err != nil {
			return nil, err
		}
		out.Configs = append(out.Configs, a)
	}
	return out, nil
}

// redacted returns a copy of a secret without its private key, as Envoy's
// config_dump shows secrets.
func redacted(sec *tlsv3.Secret) *tlsv3.Secret {
	c := proto.Clone(sec).(*tlsv3.Secret)
	if tc := c.GetTlsCertificate(); tc != nil && tc.PrivateKey != nil {
		tc.PrivateKey = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "[redacted]"}}
	}
	return c
}
