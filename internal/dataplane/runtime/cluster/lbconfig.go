package cluster

import (
	"fmt"
	"math"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// lbPolicy is a supported Cluster.lb_policy.
type lbPolicy int

const (
	policyRoundRobin lbPolicy = iota
	policyLeastRequest
	policyRandom
	policyRingHash
	policyMaglev
)

// Envoy's defaults and limits of the load balancer configurations.
const (
	defaultChoiceCount    = 2
	defaultRequestBias    = 1.0
	defaultMinRingSize    = 1024
	defaultMaxRingSize    = 8 * 1024 * 1024
	maxRingSizeLimit      = 8 * 1024 * 1024
	defaultMaglevSize     = 65537
	maxMaglevSize         = 5000011
	defaultPanicThreshold = 50.0
)

// lbConfig is a cluster's validated load balancing configuration.
type lbConfig struct {
	policy         lbPolicy
	choiceCount    int     // LEAST_REQUEST candidates
	bias           float64 // LEAST_REQUEST active_request_bias
	ringMin        uint64
	ringMax        uint64
	murmur         bool // RING_HASH hash_function MURMUR_HASH_2
	maglevSize     uint64
	panicThreshold float64 // percent; 0 disables panic mode
	failOnPanic    bool    // zone_aware_lb_config.fail_traffic_on_panic
}

// parseLB validates lb_policy, its *_lb_config and common_lb_config. A
// policy's config on a cluster of another policy is an error: the control
// plane asked for behaviour the cluster would not have.
func parseLB(def *clusterv3.Cluster) (*lbConfig, error) {
	cfg := &lbConfig{
		choiceCount:    defaultChoiceCount,
		bias:           defaultRequestBias,
		ringMin:        defaultMinRingSize,
		ringMax:        defaultMaxRingSize,
		maglevSize:     defaultMaglevSize,
		panicThreshold: defaultPanicThreshold,
	}
	switch def.GetLbPolicy() {
	case clusterv3.Cluster_ROUND_ROBIN:
		cfg.policy = policyRoundRobin
	case clusterv3.Cluster_LEAST_REQUEST:
		cfg.policy = policyLeastRequest
	case clusterv3.Cluster_RANDOM:
		cfg.policy = policyRandom
	case clusterv3.Cluster_RING_HASH:
		cfg.policy = policyRingHash
	case clusterv3.Cluster_MAGLEV:
		cfg.policy = policyMaglev
	case clusterv3.Cluster_CLUSTER_PROVIDED:
		cfg.policy = policyRoundRobin // unused: an ORIGINAL_DST cluster picks no member (originaldst.go)
	default:
		return nil, fmt.Errorf("lb_policy %s is not supported (ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH or MAGLEV)", def.GetLbPolicy())
	}
	if lr := def.GetLeastRequestLbConfig(); lr != nil {
		if cfg.policy != policyLeastRequest {
			return nil, fmt.Errorf("least_request_lb_config needs lb_policy LEAST_REQUEST, not %s", def.GetLbPolicy())
		}
		if cc := lr.GetChoiceCount(); cc != nil {
			if cc.GetValue() < 2 || cc.GetValue() > 100 {
				return nil, fmt.Errorf("least_request_lb_config.choice_count %d is out of range 2-100", cc.GetValue())
			}
			cfg.choiceCount = int(cc.GetValue())
		}
		if b := lr.GetActiveRequestBias(); b != nil {
			v := b.GetDefaultValue()
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("least_request_lb_config.active_request_bias.default_value %v must be a finite number >= 0", v)
			}
			cfg.bias = v
		}
	}
	if rh := def.GetRingHashLbConfig(); rh != nil {
		if cfg.policy != policyRingHash {
			return nil, fmt.Errorf("ring_hash_lb_config needs lb_policy RING_HASH, not %s", def.GetLbPolicy())
		}
		if v := rh.GetMinimumRingSize(); v != nil {
			cfg.ringMin = v.GetValue()
		}
		if v := rh.GetMaximumRingSize(); v != nil {
			cfg.ringMax = v.GetValue()
		}
		switch {
		case cfg.ringMin < 1 || cfg.ringMin > maxRingSizeLimit:
			return nil, fmt.Errorf("ring_hash_lb_config.minimum_ring_size %d is out of range 1-%d", cfg.ringMin, maxRingSizeLimit)
		case cfg.ringMax < 1 || cfg.ringMax > maxRingSizeLimit:
			return nil, fmt.Errorf("ring_hash_lb_config.maximum_ring_size %d is out of range 1-%d", cfg.ringMax, maxRingSizeLimit)
		case cfg.ringMin > cfg.ringMax:
			return nil, fmt.Errorf("ring_hash_lb_config.minimum_ring_size %d is larger than maximum_ring_size %d", cfg.ringMin, cfg.ringMax)
		}
		switch rh.GetHashFunction() {
		case clusterv3.Cluster_RingHashLbConfig_XX_HASH:
		case clusterv3.Cluster_RingHashLbConfig_MURMUR_HASH_2:
			cfg.murmur = true
		default:
			return nil, fmt.Errorf("ring_hash_lb_config.hash_function %s is not supported", rh.GetHashFunction())
		}
	}
	if mg := def.GetMaglevLbConfig(); mg != nil {
		if cfg.policy != policyMaglev {
			return nil, fmt.Errorf("maglev_lb_config needs lb_policy MAGLEV, not %s", def.GetLbPolicy())
		}
		if v := mg.GetTableSize(); v != nil {
			cfg.maglevSize = v.GetValue()
			if cfg.maglevSize > maxMaglevSize || !prime(cfg.maglevSize) {
				return nil, fmt.Errorf("maglev_lb_config.table_size %d must be a prime number up to %d", cfg.maglevSize, maxMaglevSize)
			}
		}
	}
	if cl := def.GetCommonLbConfig(); cl != nil {
		if p := cl.GetHealthyPanicThreshold(); p != nil {
			v := p.GetValue()
			if v < 0 || v > 100 || math.IsNaN(v) {
				return nil, fmt.Errorf("common_lb_config.healthy_panic_threshold %v is out of range 0-100", v)
			}
			cfg.panicThreshold = v
		}
		cfg.failOnPanic = cl.GetZoneAwareLbConfig().GetFailTrafficOnPanic()
	}
	return cfg, nil
}

func prime(n uint64) bool {
	if n < 2 {
		return false
	}
	for d := uint64(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}
