package build

import (
	"fmt"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/api/policy/meshloadbalancingstrategy"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// MeshLoadBalancingStrategy (docs/xds-contract.md, "Traffic policies"),
// to[] only: the cluster's lb_policy and its settings, the hash policies
// of every route (RingHash and Maglev), and locality awareness as
// endpoint priorities: the proxy's own zone (and endpoints without a
// zone) at priority 0, then the zones of each crossZone failover step
// that applies to the proxy's zone at the next priority (zones no step
// reaches get no traffic), or, without crossZone, every other zone at
// priority 1. Locality awareness is on whenever a policy applies, unless
// disabled, and needs the proxy's zone (Proxy.Zone).

const meshLoadBalancingStrategyKind = "MeshLoadBalancingStrategy"

var lbPolicies = map[meshloadbalancingstrategy.LoadBalancerType]clusterv3.Cluster_LbPolicy{
	meshloadbalancingstrategy.RoundRobinType:   clusterv3.Cluster_ROUND_ROBIN,
	meshloadbalancingstrategy.LeastRequestType: clusterv3.Cluster_LEAST_REQUEST,
	meshloadbalancingstrategy.RandomType:       clusterv3.Cluster_RANDOM,
	meshloadbalancingstrategy.RingHashType:     clusterv3.Cluster_RING_HASH,
	meshloadbalancingstrategy.MaglevType:       clusterv3.Cluster_MAGLEV,
}

func init() {
	register(Plugin{
		Name:  meshLoadBalancingStrategyKind,
		Order: 140,
		OutboundCluster: func(p *proxymodel.Proxy, out *proxymodel.Outbound, c *clusterv3.Cluster) error {
			conf, ok, err := outboundConf[meshloadbalancingstrategy.Conf](p, meshLoadBalancingStrategyKind, out)
			if err != nil || !ok || conf.LoadBalancer == nil {
				return err
			}
			if err := loadBalancer(conf.LoadBalancer, c); err != nil {
				return fmt.Errorf("to %s: %w", out.Service, err)
			}
			return nil
		},
		OutboundRoute: func(p *proxymodel.Proxy, out *proxymodel.Outbound, rc *routev3.RouteConfiguration) error {
			conf, ok, err := outboundConf[meshloadbalancingstrategy.Conf](p, meshLoadBalancingStrategyKind, out)
			if err != nil || !ok {
				return err
			}
			hp, err := hashPolicies(conf)
			if err != nil || len(hp) == 0 {
				return err
			}
			return routeActions(rc, func(a *routev3.RouteAction) error {
				a.HashPolicy = make([]*routev3.RouteAction_HashPolicy, len(hp))
				for i, h := range hp {
					a.HashPolicy[i] = proto.Clone(h).(*routev3.RouteAction_HashPolicy)
				}
				return nil
			})
		},
		OutboundEndpoints: func(p *proxymodel.Proxy, out *proxymodel.Outbound, cla *endpointv3.ClusterLoadAssignment) error {
			conf, ok, err := outboundConf[meshloadbalancingstrategy.Conf](p, meshLoadBalancingStrategyKind, out)
			if err != nil || !ok {
				return err
			}
			if err := localityAwareness(p.Zone, conf.LocalityAwareness, cla); err != nil {
				return fmt.Errorf("to %s: %w", out.Service, err)
			}
			return nil
		},
	})
}

// loadBalancer sets the cluster's algorithm and its settings.
func loadBalancer(lb *meshloadbalancingstrategy.LoadBalancer, c *clusterv3.Cluster) error {
	policy, ok := lbPolicies[lb.Type]
	if !ok {
		return fmt.Errorf("loadBalancer.type %q is not supported", lb.Type)
	}
	c.LbPolicy = policy
	switch lb.Type {
	case meshloadbalancingstrategy.LeastRequestType:
		if lr := lb.LeastRequest; lr != nil {
			cfg := &clusterv3.Cluster_LeastRequestLbConfig{ChoiceCount: u32Value(lr.ChoiceCount)}
			if lr.ActiveRequestBias != nil {
				r, err := lr.ActiveRequestBias.Rat()
				if err != nil {
					return fmt.Errorf("loadBalancer.leastRequest.activeRequestBias: %w", err)
				}
				f, _ := r.Float64()
				cfg.ActiveRequestBias = &corev3.RuntimeDouble{DefaultValue: f}
			}
			c.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: cfg}
		}
	case meshloadbalancingstrategy.RingHashType:
		if rh := lb.RingHash; rh != nil {
			cfg := &clusterv3.Cluster_RingHashLbConfig{}
			if rh.MinRingSize != nil {
				cfg.MinimumRingSize = wrapperspb.UInt64(uint64(*rh.MinRingSize))
			}
			if rh.MaxRingSize != nil {
				cfg.MaximumRingSize = wrapperspb.UInt64(uint64(*rh.MaxRingSize))
			}
			if rh.HashFunction != nil && *rh.HashFunction == meshloadbalancingstrategy.MurmurHash2Type {
				cfg.HashFunction = clusterv3.Cluster_RingHashLbConfig_MURMUR_HASH_2
			}
			c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: cfg}
		}
	case meshloadbalancingstrategy.MaglevType:
		if mg := lb.Maglev; mg != nil && mg.TableSize != nil {
			c.LbConfig = &clusterv3.Cluster_MaglevLbConfig_{MaglevLbConfig: &clusterv3.Cluster_MaglevLbConfig{
				TableSize: wrapperspb.UInt64(uint64(*mg.TableSize)),
			}}
		}
	}
	return nil
}

// hashPolicies are the route hash policies of a conf: its own
// hashPolicies when set, else those of its RingHash or Maglev balancer.
func hashPolicies(conf meshloadbalancingstrategy.Conf) ([]*routev3.RouteAction_HashPolicy, error) {
	in := conf.HashPolicies
	if len(in) == 0 && conf.LoadBalancer != nil {
		switch lb := conf.LoadBalancer; lb.Type {
		case meshloadbalancingstrategy.RingHashType:
			if lb.RingHash != nil {
				in = lb.RingHash.HashPolicies
			}
		case meshloadbalancingstrategy.MaglevType:
			if lb.Maglev != nil {
				in = lb.Maglev.HashPolicies
			}
		}
	}
	out := make([]*routev3.RouteAction_HashPolicy, 0, len(in))
	for i, h := range in {
		hp := &routev3.RouteAction_HashPolicy{Terminal: deref(h.Terminal)}
		switch {
		case h.Type == meshloadbalancingstrategy.HeaderType && h.Header != nil:
			hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: h.Header.Name}}
		case h.Type == meshloadbalancingstrategy.CookieType && h.Cookie != nil:
			hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_Cookie_{Cookie: &routev3.RouteAction_HashPolicy_Cookie{
				Name: h.Cookie.Name, Ttl: pbDuration(h.Cookie.TTL), Path: deref(h.Cookie.Path),
			}}
		case h.Type == meshloadbalancingstrategy.ConnectionType && h.Connection != nil:
			hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_ConnectionProperties_{ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{
				SourceIp: deref(h.Connection.SourceIP),
			}}
		case h.Type == meshloadbalancingstrategy.QueryParameterType && h.QueryParameter != nil:
			hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_QueryParameter_{QueryParameter: &routev3.RouteAction_HashPolicy_QueryParameter{Name: h.QueryParameter.Name}}
		case h.Type == meshloadbalancingstrategy.FilterStateType && h.FilterState != nil:
			hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_FilterState_{FilterState: &routev3.RouteAction_HashPolicy_FilterState{Key: h.FilterState.Key}}
		default:
			return nil, fmt.Errorf("hashPolicies[%d]: type %q without its settings", i, h.Type)
		}
		out = append(out, hp)
	}
	return out, nil
}

// localityAwareness sets the priority of each locality of cla, as the
// package documentation says; localities no failover step reaches are
// removed.
func localityAwareness(zone string, la *meshloadbalancingstrategy.LocalityAwareness, cla *endpointv3.ClusterLoadAssignment) error {
	if la == nil {
		la = &meshloadbalancingstrategy.LocalityAwareness{}
	}
	if deref(la.Disabled) || zone == "" {
		return nil
	}
	if la.LocalZone != nil && len(la.LocalZone.AffinityTags) > 0 {
		return fmt.Errorf("localityAwareness.localZone.affinityTags is not supported by trellis-dp")
	}
	local := func(z string) bool { return z == "" || z == zone }
	if la.CrossZone == nil {
		for _, l := range cla.Endpoints {
			if !local(l.GetLocality().GetZone()) {
				l.Priority = 1
			}
		}
		return nil
	}
	if la.CrossZone.FailoverThreshold != nil {
		return fmt.Errorf("localityAwareness.crossZone.failoverThreshold is not supported by trellis-dp")
	}
	priority := map[string]uint32{}
	var next uint32 = 1
	for _, f := range la.CrossZone.Failover {
		if f.From != nil && !slices.Contains(f.From.Zones, zone) {
			continue
		}
		if f.To.Type == meshloadbalancingstrategy.None {
			break
		}
		used := false
		for _, l := range cla.Endpoints {
			z := l.GetLocality().GetZone()
			if local(z) {
				continue
			}
			if _, done := priority[z]; done {
				continue
			}
			var take bool
			switch f.To.Type {
			case meshloadbalancingstrategy.Any:
				take = true
			case meshloadbalancingstrategy.Only:
				take = slices.Contains(f.To.Zones, z)
			case meshloadbalancingstrategy.AnyExcept:
				take = !slices.Contains(f.To.Zones, z)
			default:
				return fmt.Errorf("localityAwareness.crossZone.failover to.type %q is not supported", f.To.Type)
			}
			if take {
				priority[z] = next
				used = true
			}
		}
		if used {
			next++
		}
	}
	kept := cla.Endpoints[:0]
	for _, l := range cla.Endpoints {
		z := l.GetLocality().GetZone()
		if local(z) {
			kept = append(kept, l)
			continue
		}
		if pr, ok := priority[z]; ok {
			l.Priority = pr
			kept = append(kept, l)
		}
	}
	cla.Endpoints = kept
	return nil
}
