package meshratelimit

import (
	"regexp"
	"time"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

var topKinds = []common.TargetRefKind{
	common.Mesh, common.MeshSubset, common.MeshGateway, common.MeshService,
	common.MeshServiceSubset, common.MeshHTTPRoute, common.Dataplane,
}

var onlyMesh = common.RefRules{Allowed: []common.TargetRefKind{common.Mesh}}

// Validate checks the spec against Kuma 2.14's MeshRateLimit rules.
func (s *Spec) Validate() error {
	var errs validate.Errors
	root := validate.Root()
	if len(s.Rules) > 0 && (len(s.To) > 0 || len(s.From) > 0) {
		errs.Add(root, "fields 'to' and 'from' must be empty when 'rules' is defined")
	}
	common.ValidateTopTargetRef(&errs, s.TargetRef, len(s.From) > 0 || len(s.Rules) > 0, topKinds...)
	gateways := common.IncludesGateways(s.TargetRef)
	route := common.TopKind(s.TargetRef) == common.MeshHTTPRoute

	switch {
	case len(s.Rules) > 0 && route:
		errs.Add(root.Field("rules"), "must not be defined when the top-level targetRef is a MeshHTTPRoute")
	case len(s.Rules) > 0 && gateways:
		errs.Add(root.Field("rules"), "must not be defined when the scope includes a Gateway: select only proxyType Sidecar, or select only gateways and use spec.to")
	default:
		for i, r := range s.Rules {
			validateConf(&errs, root.Field("rules").Index(i).Field("default"), r.Default)
		}
	}

	switch {
	case len(s.From) > 0 && route:
		errs.Add(root.Field("from"), "must not be defined when the top-level targetRef is a MeshHTTPRoute")
	case len(s.From) > 0 && gateways:
		errs.Add(root.Field("from"), "must not be defined when the scope includes a Gateway: select only proxyType Sidecar, or select only gateways and use spec.to")
	default:
		for i, f := range s.From {
			p := root.Field("from").Index(i)
			common.ValidateTargetRef(&errs, p.Field("targetRef"), f.TargetRef, onlyMesh)
			validateConf(&errs, p.Field("default"), f.Default)
		}
	}

	if len(s.To) > 0 && !gateways {
		errs.Add(root.Field("to"), "must not be defined unless the top-level targetRef selects gateways")
	} else {
		for i, to := range s.To {
			p := root.Field("to").Index(i)
			common.ValidateTargetRef(&errs, p.Field("targetRef"), to.TargetRef, onlyMesh)
			validateConf(&errs, p.Field("default"), to.Default)
		}
	}
	return errs.Err()
}

// minInterval is the shortest refill interval Kuma accepts.
const minInterval = 50 * time.Millisecond

func validateConf(errs *validate.Errors, path validate.Path, c Conf) {
	lp := path.Field("local")
	l := c.Local
	if l == nil {
		errs.Add(lp, "must be defined")
		return
	}
	if l.TCP == nil && l.HTTP == nil {
		errs.Add(lp, "must have at least one defined: tcp, http")
	}
	if h := l.HTTP; h != nil {
		hp := lp.Field("http")
		if h.Disabled == nil && h.RequestRate == nil && h.OnRateLimit == nil {
			errs.Add(hp, "must have at least one defined: disabled, requestRate, onRateLimit")
		}
		validateRate(errs, hp.Field("requestRate"), h.RequestRate)
		if o := h.OnRateLimit; o != nil {
			op := hp.Field("onRateLimit")
			common.ValidatePositiveUint32(errs, op.Field("status"), o.Status)
			if o.Headers != nil {
				validateHeaders(errs, op.Field("headers").Field("set"), o.Headers.Set)
				validateHeaders(errs, op.Field("headers").Field("add"), o.Headers.Add)
			}
		}
	}
	if t := l.TCP; t != nil {
		tp := lp.Field("tcp")
		if t.Disabled == nil && t.ConnectionRate == nil {
			errs.Add(tp, "must have at least one defined: disabled, connectionRate")
		}
		validateRate(errs, tp.Field("connectionRate"), t.ConnectionRate)
	}
}

func validateRate(errs *validate.Errors, p validate.Path, r *Rate) {
	if r == nil {
		return
	}
	if r.Num == 0 {
		errs.Add(p.Field("num"), "must be greater than 0")
	}
	ip := p.Field("interval")
	if r.Interval == "" {
		errs.Add(ip, "must be defined")
		return
	}
	common.ValidateDurationAbove(errs, ip, &r.Interval, minInterval)
}

// headerNameRE is Kuma's rule for header names: lower-case RFC 7230 tokens.
var headerNameRE = regexp.MustCompile("^[a-z0-9!#$%&'*+\\-.^_`|~]+$")

func validateHeaders(errs *validate.Errors, p validate.Path, hs []HeaderKeyValue) {
	for i, h := range hs {
		np := p.Index(i).Field("name")
		switch {
		case h.Name == "":
			errs.Add(np, "must be defined")
		case len(h.Name) > 256 || !headerNameRE.MatchString(h.Name):
			errs.Add(np, "must be a lower-case HTTP header name of at most 256 characters")
		}
	}
}
