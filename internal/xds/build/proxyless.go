package build

import (
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// Proxyless builds what a proxyless gRPC client (gRPC's xDS resolver,
// target xds:///SERVICE) needs for every service of the mesh: an API
// listener named after the service, its route, its EDS cluster and its
// endpoints. These resources are served only to proxyless nodes.
func Proxyless(ix *proxymodel.Index) (*Resources, error) {
	r := &Resources{}
	for _, svc := range ix.Services() {
		routeName := outboundRouteName(svc)
		m, err := hcm(svc, routeName, nil)
		if err != nil {
			return nil, err
		}
		api, err := anyOf(m)
		if err != nil {
			return nil, err
		}
		r.Listeners = append(r.Listeners, &listenerv3.Listener{
			Name:        svc,
			ApiListener: &listenerv3.ApiListener{ApiListener: api},
		})
		rc := routeConfig(routeName, svc, svc)
		rc.VirtualHosts[0].Domains = []string{svc, "*"}
		r.Routes = append(r.Routes, rc)
		r.Clusters = append(r.Clusters, edsCluster(svc, ix.Protocol(svc)))
		r.Endpoints = append(r.Endpoints, loadAssignment(svc, ix.Endpoints(svc)))
	}
	r.sort()
	return r, nil
}
