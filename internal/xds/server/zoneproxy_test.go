package server_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/xds/server"
)

const mtlsDefaultMesh = `type: Mesh
name: default
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
`

func ingressNode(t *testing.T) *corev3.Node {
	t.Helper()
	zi, _ := json.Marshal(map[string]any{
		"type": "ZoneIngress", "name": "zi-2", "zone": "zone-2",
		"networking": map[string]any{"address": "127.0.0.1", "port": 10001, "advertisedAddress": "192.0.2.20", "advertisedPort": 10001},
	})
	meta, _ := structpb.NewStruct(map[string]any{server.MetaDataplane: string(zi)})
	return &corev3.Node{Id: "zi-2", Metadata: meta}
}

func backendIn(zone, name, addr string) string {
	return "type: Dataplane\nname: " + name + "\nmesh: default\nnetworking:\n  address: " + addr +
		"\n  inbound:\n  - port: 9000\n    tags: {kuma.io/service: backend, kuma.io/protocol: http, kuma.io/zone: " + zone + "}\n"
}

// availableInstances returns the instances of backend zi-2 announces.
func availableInstances(c *cp) uint32 {
	d, _ := c.mgr.Registry().ByKind("ZoneIngress")
	res, err := c.mgr.Get(context.Background(), d, "", "zi-2")
	if err != nil {
		return 0
	}
	var n uint32
	for _, s := range res.Spec.(*mesh.ZoneIngress).AvailableServices {
		if s.Tags["kuma.io/service"] == "backend" && s.Instances != nil {
			n += *s.Instances
		}
	}
	return n
}

// A zone ingress registers from its node metadata, is given a listener
// with a chain per service of its zone matched by SNI, and the control
// plane keeps its availableServices; a sidecar outside zone-2 gets the
// ingress as backend's endpoint, weighted by the instance count.
func TestZoneIngressRegistersAndServes(t *testing.T) {
	c := startCP(t, time.Minute)
	c.apply(t, mtlsDefaultMesh)
	c.apply(t, backendIn("zone-2", "backend-2", "127.0.0.2"))
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(c.dial(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: ingressNode(t), TypeUrl: resourcev3.ListenerType}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Resources) != 1 {
		t.Fatalf("the ingress got %d listeners, want 1", len(resp.Resources))
	}
	var l listenerv3.Listener
	if err := resp.Resources[0].UnmarshalTo(&l); err != nil {
		t.Fatal(err)
	}
	if names := l.GetFilterChains()[0].GetFilterChainMatch().GetServerNames(); len(names) != 1 || names[0] != "backend{mesh=default}" {
		t.Fatalf("the ingress's chain matches %v, want backend{mesh=default}", names)
	}
	waitFor(t, "availableServices with 1 backend", func() bool { return availableInstances(c) == 1 })
	c.apply(t, backendIn("zone-2", "backend-3", "127.0.0.3"))
	waitFor(t, "availableServices with 2 backends", func() bool { return availableInstances(c) == 2 })

	// A sidecar of the CP's own zone (none: standalone) reaches zone-2
	// through the ingress.
	side, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := dpNode(t, "web-1", 18090)
	_ = side.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.EndpointType, ResourceNames: []string{"backend"}})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r, err := side.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range r.Resources {
			var cla endpointv3.ClusterLoadAssignment
			if err := a.UnmarshalTo(&cla); err != nil || cla.ClusterName != "backend" {
				continue
			}
			for _, loc := range cla.Endpoints {
				for _, ep := range loc.LbEndpoints {
					sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
					if sa.GetAddress() == "192.0.2.20" && ep.GetLoadBalancingWeight().GetValue() == 2 && loc.GetLocality().GetZone() == "zone-2" {
						return
					}
				}
			}
		}
		_ = side.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.EndpointType, ResourceNames: []string{"backend"}, ResponseNonce: r.Nonce, VersionInfo: r.VersionInfo})
	}
	t.Fatal("the sidecar did not get the ingress (weight 2, zone-2) as backend's endpoint within 5 s")
}

// A zone ingress that leaves is deregistered after the delay, so other
// zones stop sending it traffic.
func TestZoneIngressDeregistered(t *testing.T) {
	c := startCP(t, 200*time.Millisecond)
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(c.dial(t))
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&discoveryv3.DiscoveryRequest{Node: ingressNode(t), TypeUrl: resourcev3.ListenerType})
	d, _ := c.mgr.Registry().ByKind("ZoneIngress")
	waitFor(t, "the ingress to register", func() bool {
		_, err := c.mgr.Get(context.Background(), d, "", "zi-2")
		return err == nil
	})
	cancel()
	waitFor(t, "the ingress to be deregistered", func() bool {
		_, err := c.mgr.Get(context.Background(), d, "", "zi-2")
		return err != nil
	})
}
