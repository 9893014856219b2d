package build

import (
	"fmt"
	"math/big"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/policy/meshcircuitbreaker"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// MeshCircuitBreaker (docs/xds-contract.md, "Traffic policies"): to[] on
// the clusters of an outbound, from[] (and rules[]) on the local cluster
// of an inbound. Connection limits become the cluster's default-priority
// circuit breaker thresholds; outlier detection is translated as Kuma
// does: every detector that is not configured is sent with enforcement 0
// (off), every configured one with enforcement 100.

const meshCircuitBreakerKind = "MeshCircuitBreaker"

// enforcingOn and enforcingOff are the enforcement percentages of
// configured and unconfigured detectors.
const (
	enforcingOn  = 100
	enforcingOff = 0
)

func init() {
	register(Plugin{
		Name:  meshCircuitBreakerKind,
		Order: 120,
		OutboundCluster: func(p *proxymodel.Proxy, out *proxymodel.Outbound, c *clusterv3.Cluster) error {
			conf, ok, err := outboundConf[meshcircuitbreaker.Conf](p, meshCircuitBreakerKind, out)
			if err != nil || !ok {
				return err
			}
			if err := circuitBreaker(conf, c); err != nil {
				return fmt.Errorf("to %s: %w", out.Service, err)
			}
			return nil
		},
		InboundCluster: func(p *proxymodel.Proxy, in *proxymodel.Inbound, c *clusterv3.Cluster) error {
			conf, ok, err := inboundConf[meshcircuitbreaker.Conf](p, meshCircuitBreakerKind, in)
			if err != nil || !ok {
				return err
			}
			if err := circuitBreaker(conf, c); err != nil {
				return fmt.Errorf("inbound %s:%d: %w", in.Address, in.Port, err)
			}
			return nil
		},
	})
}

// circuitBreaker applies a conf to a cluster.
func circuitBreaker(conf meshcircuitbreaker.Conf, c *clusterv3.Cluster) error {
	if l := conf.ConnectionLimits; l != nil {
		if l.MaxConnectionPools != nil {
			return fmt.Errorf("connectionLimits.maxConnectionPools is not supported by trellis-dp")
		}
		c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
			MaxConnections:     u32Value(l.MaxConnections),
			MaxPendingRequests: u32Value(l.MaxPendingRequests),
			MaxRequests:        u32Value(l.MaxRequests),
			MaxRetries:         u32Value(l.MaxRetries),
		}}}
	}
	od := conf.OutlierDetection
	if od == nil {
		return nil
	}
	if od.HealthyPanicThreshold != nil {
		if err := setHealthyPanicThreshold(c, od.HealthyPanicThreshold); err != nil {
			return fmt.Errorf("outlierDetection.healthyPanicThreshold: %w", err)
		}
	}
	if od.Disabled != nil && *od.Disabled {
		return nil
	}
	out := &clusterv3.OutlierDetection{
		Interval:           pbDuration(od.Interval),
		BaseEjectionTime:   pbDuration(od.BaseEjectionTime),
		MaxEjectionPercent: u32Value(od.MaxEjectionPercent),
	}
	if od.SplitExternalAndLocalErrors != nil {
		out.SplitExternalLocalOriginErrors = *od.SplitExternalAndLocalErrors
	}
	d := od.Detectors
	if d == nil {
		d = &meshcircuitbreaker.Detectors{}
	}
	out.Consecutive_5Xx, out.EnforcingConsecutive_5Xx = consecutive(d.TotalFailures)
	out.ConsecutiveGatewayFailure, out.EnforcingConsecutiveGatewayFailure = consecutive(d.GatewayFailures)
	out.ConsecutiveLocalOriginFailure, out.EnforcingConsecutiveLocalOriginFailure = consecutive(d.LocalOriginFailures)
	out.EnforcingSuccessRate = wrapperspb.UInt32(enforcingOff)
	if sr := d.SuccessRate; sr != nil {
		out.EnforcingSuccessRate = wrapperspb.UInt32(enforcingOn)
		out.SuccessRateMinimumHosts = u32Value(sr.MinimumHosts)
		out.SuccessRateRequestVolume = u32Value(sr.RequestVolume)
		if sr.StandardDeviationFactor != nil {
			f, err := thousandths(sr.StandardDeviationFactor)
			if err != nil {
				return fmt.Errorf("outlierDetection.detectors.successRate.standardDeviationFactor: %w", err)
			}
			out.SuccessRateStdevFactor = wrapperspb.UInt32(f)
		}
	}
	out.EnforcingFailurePercentage = wrapperspb.UInt32(enforcingOff)
	out.EnforcingFailurePercentageLocalOrigin = wrapperspb.UInt32(enforcingOff)
	if fp := d.FailurePercentage; fp != nil {
		out.EnforcingFailurePercentage = wrapperspb.UInt32(enforcingOn)
		out.EnforcingFailurePercentageLocalOrigin = wrapperspb.UInt32(enforcingOn)
		out.FailurePercentageMinimumHosts = u32Value(fp.MinimumHosts)
		out.FailurePercentageRequestVolume = u32Value(fp.RequestVolume)
		out.FailurePercentageThreshold = u32Value(fp.Threshold)
	}
	c.OutlierDetection = out
	return nil
}

// consecutive is a consecutive-failures detector: its count and
// enforcement.
func consecutive(d *meshcircuitbreaker.Consecutive) (count, enforcing *wrapperspb.UInt32Value) {
	if d == nil || d.Consecutive == nil {
		return nil, wrapperspb.UInt32(enforcingOff)
	}
	return wrapperspb.UInt32(*d.Consecutive), wrapperspb.UInt32(enforcingOn)
}

// thousandths is v × 1000, rounded down: Envoy's success_rate_stdev_factor
// is the factor in thousandths.
func thousandths(v *common.IntOrString) (uint32, error) {
	r, err := v.Rat()
	if err != nil {
		return 0, err
	}
	m := new(big.Rat).Mul(r, big.NewRat(1000, 1))
	return uint32(new(big.Int).Quo(m.Num(), m.Denom()).Uint64()), nil
}

// setHealthyPanicThreshold sets the cluster's panic threshold, a
// percentage.
func setHealthyPanicThreshold(c *clusterv3.Cluster, v *common.IntOrString) error {
	r, err := v.Rat()
	if err != nil {
		return err
	}
	f, _ := r.Float64()
	if c.CommonLbConfig == nil {
		c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{}
	}
	c.CommonLbConfig.HealthyPanicThreshold = &typev3.Percent{Value: f}
	return nil
}

func u32Value(v *uint32) *wrapperspb.UInt32Value {
	if v == nil {
		return nil
	}
	return wrapperspb.UInt32(*v)
}
