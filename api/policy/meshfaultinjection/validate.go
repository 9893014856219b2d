package meshfaultinjection

import (
	"regexp"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

var (
	topKinds = []common.TargetRefKind{
		common.Mesh, common.MeshSubset, common.MeshGateway, common.MeshService,
		common.MeshServiceSubset, common.Dataplane,
	}
	fromKinds = []common.TargetRefKind{
		common.Mesh, common.MeshSubset, common.MeshServiceSubset, common.MeshService,
	}
	onlyMesh = []common.TargetRefKind{common.Mesh}
)

const gatewayScope = "must not be defined when the scope includes a Gateway: select only proxyType Sidecar, or select only gateways and use spec.to"

// Validate checks the spec against Kuma 2.14's MeshFaultInjection rules.
func (s *Spec) Validate() error {
	var errs validate.Errors
	root := validate.Root()
	common.ValidateTopTargetRef(&errs, s.TargetRef, len(s.From) > 0 || len(s.Rules) > 0, topKinds...)
	if len(s.Rules) > 0 && (len(s.To) > 0 || len(s.From) > 0) {
		errs.Add(root, "fields 'to' and 'from' must be empty when 'rules' is defined")
	}
	gateways := common.IncludesGateways(s.TargetRef)

	if len(s.Rules) > 0 && gateways {
		errs.Add(root.Field("rules"), gatewayScope)
	} else {
		for i, r := range s.Rules {
			validateConf(&errs, root.Field("rules").Index(i).Field("default"), r.Default)
		}
	}
	if len(s.From) > 0 && gateways {
		errs.Add(root.Field("from"), gatewayScope)
	} else {
		for i, f := range s.From {
			p := root.Field("from").Index(i)
			common.ValidateTargetRef(&errs, p.Field("targetRef"), f.TargetRef, common.RefRules{Allowed: fromKinds})
			validateConf(&errs, p.Field("default"), f.Default)
		}
	}
	if len(s.To) > 0 && !gateways {
		errs.Add(root.Field("to"), "must not be defined unless the top-level targetRef selects gateways")
	} else {
		for i, to := range s.To {
			p := root.Field("to").Index(i)
			common.ValidateTargetRef(&errs, p.Field("targetRef"), to.TargetRef, common.RefRules{Allowed: onlyMesh})
			validateConf(&errs, p.Field("default"), to.Default)
		}
	}
	return errs.Err()
}

// bandwidthRE matches Kuma's bandwidth notation: digits and a unit.
var bandwidthRE = regexp.MustCompile(`^\d+\s?([GMk]?bps)$`)

func validateConf(errs *validate.Errors, path validate.Path, c Conf) {
	for i, f := range c.HTTP {
		p := path.Field("http").Index(i)
		if a := f.Abort; a != nil {
			ap := p.Field("abort")
			common.ValidateHTTPStatus(errs, ap.Field("httpStatus"), a.HTTPStatus)
			validatePercentage(errs, ap.Field("percentage"), a.Percentage)
		}
		if d := f.Delay; d != nil {
			dp := p.Field("delay")
			if d.Value == "" {
				errs.Add(dp.Field("value"), "must be defined")
			} else {
				common.ValidateDuration(errs, dp.Field("value"), &d.Value)
			}
			validatePercentage(errs, dp.Field("percentage"), d.Percentage)
		}
		if b := f.ResponseBandwidth; b != nil {
			bp := p.Field("responseBandwidth")
			switch {
			case b.Limit == "":
				errs.Add(bp.Field("limit"), "must be defined")
			case !bandwidthRE.MatchString(b.Limit):
				errs.Add(bp.Field("limit"), "must be a rate in bps, kbps, Mbps or Gbps, such as \"50Mbps\"")
			}
			validatePercentage(errs, bp.Field("percentage"), b.Percentage)
		}
	}
}

func validatePercentage(errs *validate.Errors, p validate.Path, v *common.IntOrString) {
	if v == nil {
		errs.Add(p, "must be defined")
		return
	}
	common.ValidatePercentage(errs, p, v, true)
}
