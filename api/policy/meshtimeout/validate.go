package meshtimeout

import (
	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

// topKinds are the top-level targetRef kinds Kuma 2.14 accepts on
// Universal (where every policy has the system role).
var topKinds = []common.TargetRefKind{
	common.Mesh, common.MeshSubset, common.MeshGateway, common.MeshService,
	common.MeshServiceSubset, common.MeshHTTPRoute, common.Dataplane,
}

// Validate checks the spec against Kuma 2.14's MeshTimeout rules.
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
	routeOrGateway := top == common.MeshHTTPRoute || top == common.MeshGateway

	toKinds := []common.TargetRefKind{common.Mesh, common.MeshService, common.MeshExternalService, common.MeshMultiZoneService, common.MeshHTTPRoute}
	if routeOrGateway {
		toKinds = []common.TargetRefKind{common.Mesh, common.MeshExternalService}
	}
	for i, to := range s.To {
		p := root.Field("to").Index(i)
		common.ValidateTargetRef(&errs, p.Field("targetRef"), to.TargetRef, common.RefRules{Allowed: toKinds})
		validateConf(&errs, p.Field("default"), to.Default, top)
	}

	if routeOrGateway && len(s.From) > 0 {
		errs.Addf(root.Field("from"), "must not be defined when the top-level targetRef is %s", top)
	} else {
		for i, from := range s.From {
			p := root.Field("from").Index(i)
			common.ValidateTargetRef(&errs, p.Field("targetRef"), from.TargetRef, common.RefRules{Allowed: []common.TargetRefKind{common.Mesh}})
			validateConf(&errs, p.Field("default"), from.Default, top)
		}
	}

	for i, rule := range s.Rules {
		validateConf(&errs, root.Field("rules").Index(i).Field("default"), rule.Default, top)
	}
	return errs.Err()
}

const notWithRoute = "can't be specified when the top-level targetRef is a MeshHTTPRoute"

func validateConf(errs *validate.Errors, path validate.Path, c Conf, top common.TargetRefKind) {
	if c.ConnectionTimeout == nil && c.IdleTimeout == nil && c.HTTP == nil {
		errs.Add(path, "at least one timeout should be configured")
		return
	}
	if top == common.MeshHTTPRoute {
		forbid(errs, path.Field("connectionTimeout"), c.ConnectionTimeout)
		forbid(errs, path.Field("idleTimeout"), c.IdleTimeout)
		if c.HTTP != nil {
			forbid(errs, path.Field("http").Field("maxStreamDuration"), c.HTTP.MaxStreamDuration)
			forbid(errs, path.Field("http").Field("maxConnectionDuration"), c.HTTP.MaxConnectionDuration)
		}
	}
	common.ValidatePositiveDuration(errs, path.Field("connectionTimeout"), c.ConnectionTimeout)
	common.ValidateDuration(errs, path.Field("idleTimeout"), c.IdleTimeout)
	if h := c.HTTP; h != nil {
		hp := path.Field("http")
		if h.RequestTimeout == nil && h.StreamIdleTimeout == nil && h.MaxStreamDuration == nil &&
			h.MaxConnectionDuration == nil && h.RequestHeadersTimeout == nil {
			errs.Add(hp, "at least one timeout in this section should be configured")
		}
		common.ValidateDuration(errs, hp.Field("requestTimeout"), h.RequestTimeout)
		common.ValidateDuration(errs, hp.Field("streamIdleTimeout"), h.StreamIdleTimeout)
		common.ValidateDuration(errs, hp.Field("maxStreamDuration"), h.MaxStreamDuration)
		common.ValidateDuration(errs, hp.Field("maxConnectionDuration"), h.MaxConnectionDuration)
		common.ValidateDuration(errs, hp.Field("requestHeadersTimeout"), h.RequestHeadersTimeout)
	}
}

func forbid(errs *validate.Errors, path validate.Path, d *common.Duration) {
	if d != nil {
		errs.Add(path, notWithRoute)
	}
}
