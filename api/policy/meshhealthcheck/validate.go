package meshhealthcheck

import (
	"encoding/base64"
	"regexp"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

var (
	topKinds = []common.TargetRefKind{
		common.Mesh, common.MeshSubset, common.MeshGateway, common.MeshService,
		common.MeshServiceSubset, common.Dataplane,
	}
	toKinds = []common.TargetRefKind{
		common.Mesh, common.MeshService, common.MeshExternalService, common.MeshMultiZoneService,
	}
)

// Validate checks the spec against Kuma 2.14's MeshHealthCheck rules.
func (s *Spec) Validate() error {
	var errs validate.Errors
	root := validate.Root()
	common.ValidateTopTargetRef(&errs, s.TargetRef, false, topKinds...)
	top := common.TopKind(s.TargetRef)
	for i, to := range s.To {
		p := root.Field("to").Index(i)
		common.ValidateTargetRef(&errs, p.Field("targetRef"), to.TargetRef, common.RefRules{Allowed: toKinds})
		if to.TargetRef.Kind == common.MeshExternalService && top != common.Mesh {
			errs.Add(p.Field("targetRef").Field("kind"), "kind MeshExternalService is only possible with a top-level targetRef of kind Mesh")
		}
		validateConf(&errs, p.Field("default"), to.Default)
	}
	return errs.Err()
}

func validateConf(errs *validate.Errors, p validate.Path, c Conf) {
	common.ValidatePositiveDuration(errs, p.Field("interval"), c.Interval)
	common.ValidatePositiveDuration(errs, p.Field("unhealthyInterval"), c.UnhealthyInterval)
	common.ValidatePositiveDuration(errs, p.Field("timeout"), c.Timeout)
	common.ValidatePositiveInt32(errs, p.Field("unhealthyThreshold"), c.UnhealthyThreshold)
	common.ValidatePositiveInt32(errs, p.Field("healthyThreshold"), c.HealthyThreshold)
	common.ValidatePositiveDuration(errs, p.Field("initialJitter"), c.InitialJitter)
	common.ValidatePositiveDuration(errs, p.Field("intervalJitter"), c.IntervalJitter)
	if v := c.IntervalJitterPercent; v != nil && (*v < 0 || *v > 100) {
		errs.Add(p.Field("intervalJitterPercent"), "must be in the range [0, 100]")
	}
	common.ValidatePercentage(errs, p.Field("healthyPanicThreshold"), c.HealthyPanicThreshold, true)
	common.ValidatePositiveDuration(errs, p.Field("noTrafficInterval"), c.NoTrafficInterval)
	if c.EventLogPath != nil && *c.EventLogPath == "" {
		errs.Add(p.Field("eventLogPath"), "must not be empty")
	}
	if c.HTTP == nil && c.TCP == nil && c.GRPC == nil {
		errs.Add(p, "must have at least one defined: http, tcp, grpc")
	}
	if h := c.HTTP; h != nil {
		hp := p.Field("http")
		if h.Path != nil && *h.Path == "" {
			errs.Add(hp.Field("path"), "must not be empty")
		}
		for i, code := range h.ExpectedStatuses {
			common.ValidateHTTPStatus(errs, hp.Field("expectedStatuses").Index(i), code)
		}
		if m := h.RequestHeadersToAdd; m != nil {
			validateHeaders(errs, hp.Field("requestHeadersToAdd").Field("set"), m.Set)
			validateHeaders(errs, hp.Field("requestHeadersToAdd").Field("add"), m.Add)
		}
	}
	if t := c.TCP; t != nil {
		tp := p.Field("tcp")
		if t.Send != nil {
			validateBase64(errs, tp.Field("send"), *t.Send)
		}
		for i, r := range t.Receive {
			validateBase64(errs, tp.Field("receive").Index(i), r)
		}
	}
}

func validateBase64(errs *validate.Errors, p validate.Path, s string) {
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		errs.Add(p, "must be base64-encoded")
	}
}

// headerNameRE is Kuma's rule for header names: lower-case RFC 7230 tokens.
var headerNameRE = regexp.MustCompile("^[a-z0-9!#$%&'*+\\-.^_`|~]+$")

func validateHeaders(errs *validate.Errors, p validate.Path, hs []HeaderKeyValue) {
	if len(hs) > 16 {
		errs.Add(p, "must have at most 16 items")
	}
	seen := map[string]bool{}
	for i, h := range hs {
		np := p.Index(i).Field("name")
		switch {
		case h.Name == "":
			errs.Add(np, "must be defined")
		case len(h.Name) > 256 || !headerNameRE.MatchString(h.Name):
			errs.Add(np, "must be a lower-case HTTP header name of at most 256 characters")
		case seen[h.Name]:
			errs.Addf(np, "duplicate header %q", h.Name)
		}
		seen[h.Name] = true
	}
}
