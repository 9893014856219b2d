package meshcircuitbreaker

import (
	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

// topKinds are the top-level targetRef kinds Kuma 2.14 accepts.
var topKinds = []common.TargetRefKind{
	common.Mesh, common.MeshSubset, common.MeshService, common.MeshGateway,
	common.MeshServiceSubset, common.Dataplane,
}

var toKinds = []common.TargetRefKind{
	common.Mesh, common.MeshService, common.MeshExternalService, common.MeshMultiZoneService,
}

// Validate checks the spec against Kuma 2.14's MeshCircuitBreaker rules.
func (s *Spec) Validate() error {
	var errs validate.Errors
	root := validate.Root()
	common.ValidateTopTargetRef(&errs, s.TargetRef, len(s.From) > 0 || len(s.Rules) > 0, topKinds...)
	if len(s.Rules) > 0 && (len(s.To) > 0 || len(s.From) > 0) {
		errs.Add(root, "fields 'to' and 'from' must be empty when 'rules' is defined")
	}
	if len(s.To) == 0 && len(s.From) == 0 && len(s.Rules) == 0 {
		errs.Add(root, "at least one of 'from', 'to' or 'rules' has to be defined")
	}
	top := common.TopKind(s.TargetRef)
	for i, to := range s.To {
		p := root.Field("to").Index(i)
		common.ValidateTargetRef(&errs, p.Field("targetRef"), to.TargetRef, common.RefRules{Allowed: toKinds})
		if to.TargetRef.Kind == common.MeshExternalService && top != common.Mesh {
			errs.Add(p.Field("targetRef").Field("kind"), "kind MeshExternalService is only allowed with a top-level targetRef of kind Mesh: it is configured on the zone egress and shared by all clients")
		}
		validateConf(&errs, p.Field("default"), to.Default)
	}
	for i, from := range s.From {
		p := root.Field("from").Index(i)
		common.ValidateTargetRef(&errs, p.Field("targetRef"), from.TargetRef, common.RefRules{Allowed: []common.TargetRefKind{common.Mesh}})
		validateConf(&errs, p.Field("default"), from.Default)
	}
	for i, rule := range s.Rules {
		validateConf(&errs, root.Field("rules").Index(i).Field("default"), rule.Default)
	}
	return errs.Err()
}

func validateConf(errs *validate.Errors, path validate.Path, c Conf) {
	if c.ConnectionLimits == nil && c.OutlierDetection == nil {
		errs.Add(path, "at least one of: 'connectionLimits' or 'outlierDetection' should be configured")
		return
	}
	if l := c.ConnectionLimits; l != nil {
		p := path.Field("connectionLimits")
		common.ValidatePositiveUint32(errs, p.Field("maxConnections"), l.MaxConnections)
		common.ValidatePositiveUint32(errs, p.Field("maxConnectionPools"), l.MaxConnectionPools)
		common.ValidatePositiveUint32(errs, p.Field("maxPendingRequests"), l.MaxPendingRequests)
		common.ValidatePositiveUint32(errs, p.Field("maxRetries"), l.MaxRetries)
		common.ValidatePositiveUint32(errs, p.Field("maxRequests"), l.MaxRequests)
	}
	if o := c.OutlierDetection; o != nil {
		validateOutlierDetection(errs, path.Field("outlierDetection"), o)
	}
}

func validateOutlierDetection(errs *validate.Errors, p validate.Path, o *OutlierDetection) {
	common.ValidatePositiveDuration(errs, p.Field("interval"), o.Interval)
	common.ValidatePositiveDuration(errs, p.Field("baseEjectionTime"), o.BaseEjectionTime)
	validatePercent(errs, p.Field("maxEjectionPercent"), o.MaxEjectionPercent)
	common.ValidatePercentage(errs, p.Field("healthyPanicThreshold"), o.HealthyPanicThreshold, true)

	dp := p.Field("detectors")
	d := o.Detectors
	if d == nil {
		errs.Add(dp, "must be defined")
		return
	}
	if d.TotalFailures == nil && d.GatewayFailures == nil && d.LocalOriginFailures == nil && d.SuccessRate == nil && d.FailurePercentage == nil {
		errs.Add(dp, "must have at least one defined: totalFailures, gatewayFailures, localOriginFailures, successRate, failurePercentage")
		return
	}
	for _, c := range []struct {
		name string
		c    *Consecutive
	}{{"totalFailures", d.TotalFailures}, {"gatewayFailures", d.GatewayFailures}, {"localOriginFailures", d.LocalOriginFailures}} {
		if c.c != nil {
			common.ValidatePositiveUint32(errs, dp.Field(c.name).Field("consecutive"), c.c.Consecutive)
		}
	}
	if sr := d.SuccessRate; sr != nil {
		sp := dp.Field("successRate")
		common.ValidatePositiveUint32(errs, sp.Field("minimumHosts"), sr.MinimumHosts)
		common.ValidatePositiveUint32(errs, sp.Field("requestVolume"), sr.RequestVolume)
		if f := common.ValidateIntOrString(errs, sp.Field("standardDeviationFactor"), sr.StandardDeviationFactor); f != nil && f.Sign() <= 0 {
			errs.Add(sp.Field("standardDeviationFactor"), "must be greater than 0")
		}
	}
	if fp := d.FailurePercentage; fp != nil {
		pp := dp.Field("failurePercentage")
		common.ValidatePositiveUint32(errs, pp.Field("minimumHosts"), fp.MinimumHosts)
		common.ValidatePositiveUint32(errs, pp.Field("requestVolume"), fp.RequestVolume)
		validatePercent(errs, pp.Field("threshold"), fp.Threshold)
	}
}

func validatePercent(errs *validate.Errors, p validate.Path, v *uint32) {
	if v != nil && *v > 100 {
		errs.Add(p, "must be in the range [0, 100]")
	}
}
