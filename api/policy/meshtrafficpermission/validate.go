package meshtrafficpermission

import (
	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

var (
	topKinds = []common.TargetRefKind{
		common.Mesh, common.MeshSubset, common.MeshService, common.MeshServiceSubset, common.Dataplane,
	}
	fromKinds = []common.TargetRefKind{
		common.Mesh, common.MeshSubset, common.MeshService, common.MeshServiceSubset,
	}
)

// Validate checks the spec against Kuma 2.14's MeshTrafficPermission rules.
func (s *Spec) Validate() error {
	var errs validate.Errors
	root := validate.Root()
	common.ValidateTopTargetRef(&errs, s.TargetRef, true, topKinds...)
	if len(s.From) > 0 && len(s.Rules) > 0 {
		errs.Add(root, "field 'from' must be empty when 'rules' is defined")
	}
	if len(s.From) == 0 && len(s.Rules) == 0 {
		errs.Add(root, "at least one of 'from' or 'rules' has to be defined")
	}
	for i, from := range s.From {
		p := root.Field("from").Index(i)
		common.ValidateTargetRef(&errs, p.Field("targetRef"), from.TargetRef, common.RefRules{Allowed: fromKinds})
		ap := p.Field("default").Field("action")
		if from.Default.Action == nil || *from.Default.Action == "" {
			errs.Add(ap, "must be defined")
		} else {
			validate.Enum(&errs, ap, string(*from.Default.Action), string(Allow), string(Deny), string(AllowWithShadowDeny))
		}
	}
	for i, rule := range s.Rules {
		p := root.Field("rules").Index(i)
		d := rule.Default
		if len(d.Deny) == 0 && len(d.Allow) == 0 && len(d.AllowWithShadowDeny) == 0 {
			errs.Add(p, "at least one of 'allow', 'allowWithShadowDeny', 'deny' has to be defined")
		}
		dp := p.Field("default")
		validateMatches(&errs, dp.Field("deny"), d.Deny)
		validateMatches(&errs, dp.Field("allowWithShadowDeny"), d.AllowWithShadowDeny)
		validateMatches(&errs, dp.Field("allow"), d.Allow)
	}
	return errs.Err()
}

func validateMatches(errs *validate.Errors, path validate.Path, matches []Match) {
	for i, m := range matches {
		p := path.Index(i).Field("spiffeID")
		if m.SpiffeID == nil {
			errs.Add(p, "must be defined")
			continue
		}
		if m.SpiffeID.Type == "" {
			errs.Add(p.Field("type"), "must be defined")
		} else {
			validate.Enum(errs, p.Field("type"), string(m.SpiffeID.Type), string(Exact), string(Prefix))
		}
		validate.Required(errs, p.Field("value"), m.SpiffeID.Value)
	}
}
