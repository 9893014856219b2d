package build

import (
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/trellis-mesh/trellis/api/policy/meshloadbalancingstrategy"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// Cross-zone outbounds (docs/xds-contract.md, "Zone ingress"): an outbound
// with endpoints behind another zone's ingress sends the SNI
// "<service>{mesh=<mesh>}" in its upstream TLS, by which the ingress
// picks the service (the backend's sidecar ignores it); and, when no
// MeshLoadBalancingStrategy applies to it, its load assignment prefers the
// proxy's zone, as Kuma's locality awareness does by default: the
// localities of other zones' ingresses get priority 1, so they take
// traffic only when the local instances are gone or unhealthy.
func init() {
	register(Plugin{
		Name:  "CrossZone",
		Order: 141, // after MeshLoadBalancingStrategy
		UpstreamTLS: func(p *proxymodel.Proxy, out *proxymodel.Outbound, tc *tlsv3.UpstreamTlsContext) error {
			if out.HasCrossZone() {
				tc.Sni = proxymodel.SNI(p.Mesh, out.Service)
			}
			return nil
		},
		OutboundEndpoints: func(p *proxymodel.Proxy, out *proxymodel.Outbound, cla *endpointv3.ClusterLoadAssignment) error {
			if !out.HasCrossZone() {
				return nil
			}
			if _, ok, err := outboundConf[meshloadbalancingstrategy.Conf](p, meshLoadBalancingStrategyKind, out); err != nil || ok {
				return err // the policy decides
			}
			remote := map[string]bool{}
			for _, ep := range out.Endpoints {
				if ep.ZoneIngress != "" {
					remote[ep.Zone] = true
				}
			}
			for _, l := range cla.Endpoints {
				if remote[l.GetLocality().GetZone()] {
					l.Priority = 1
				}
			}
			return nil
		},
	})
}
