package meshhttproute

import (
	"regexp"
	"strings"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

// Kinds accepted by each targetRef of a MeshHTTPRoute, as Kuma 2.14 accepts
// them for policies applied through the Universal API.
var (
	topRefs = common.RefRules{Allowed: []common.TargetRefKind{
		common.Mesh, common.MeshSubset, common.MeshService, common.MeshServiceSubset,
		common.MeshGateway, common.Dataplane,
	}}
	toRefs = common.RefRules{Allowed: []common.TargetRefKind{
		common.MeshService, common.MeshExternalService, common.MeshMultiZoneService,
	}}
	gatewayToRefs = common.RefRules{Allowed: []common.TargetRefKind{common.Mesh}}
	backendRefs   = common.BackendRefRules{Allowed: []common.TargetRefKind{
		common.MeshService, common.MeshServiceSubset, common.MeshExternalService, common.MeshMultiZoneService,
	}}
	mirrorRefs = common.RefRules{Allowed: []common.TargetRefKind{common.MeshService, common.MeshServiceSubset}}
)

// headerNameRE is the token syntax of RFC 7230 in lower case, as Kuma's
// schema requires for header names.
var headerNameRE = regexp.MustCompile("^[a-z0-9!#$%&'*+\\-.^_`|~]+$")

// maxHeaderModifications is the longest set, add or remove list allowed.
const maxHeaderModifications = 16

// Validate checks the spec as Kuma 2.14 does; paths are relative to the
// spec.
func (s *Spec) Validate() error {
	var errs validate.Errors
	root := validate.Root()
	top := common.TargetRef{Kind: common.Mesh}
	if s.TargetRef != nil {
		top = *s.TargetRef
		common.ValidateTargetRefListenerTags(&errs, root.Field("targetRef"), top, topRefs)
	}
	gateway := top.Kind == common.MeshGateway
	for i, to := range s.To {
		p := root.Field("to").Index(i)
		if gateway {
			common.ValidateTargetRef(&errs, p.Field("targetRef"), to.TargetRef, gatewayToRefs)
		} else {
			common.ValidateTargetRef(&errs, p.Field("targetRef"), to.TargetRef, toRefs)
		}
		validateHostnames(&errs, p.Field("hostnames"), to.Hostnames, gateway)
		for j, rule := range to.Rules {
			validateRule(&errs, p.Field("rules").Index(j), rule, gateway)
		}
	}
	return errs.Err()
}

func validateHostnames(errs *validate.Errors, path validate.Path, hostnames []string, gateway bool) {
	if !gateway {
		if len(hostnames) > 0 {
			errs.Add(path, "must not be defined: hostnames only apply when the top-level targetRef is a MeshGateway")
		}
		return
	}
	for i, h := range hostnames {
		name := strings.TrimPrefix(h, "*.")
		if h != "*" && !common.IsLowerSubdomain(name) {
			errs.Add(path.Index(i), "must be '*', a host name or '*.' followed by a host name")
		}
	}
}

func validateRule(errs *validate.Errors, path validate.Path, rule Rule, gateway bool) {
	if len(rule.Matches) == 0 {
		errs.Add(path.Field("matches"), "must have at least one element")
	}
	for i, m := range rule.Matches {
		validateMatch(errs, path.Field("matches").Index(i), m)
	}
	def := path.Field("default")
	var filters []Filter
	if rule.Default.Filters != nil {
		filters = *rule.Default.Filters
	}
	for i, f := range filters {
		validateFilter(errs, def.Field("filters").Index(i), f, rule.Matches, gateway)
	}
	var refs []common.BackendRef
	if rule.Default.BackendRefs != nil {
		refs = *rule.Default.BackendRefs
	}
	if len(refs) == 0 && gateway && !hasRedirect(filters) {
		errs.Add(def.Field("backendRefs"), "must not be empty: a MeshGateway route needs a backend unless it redirects")
	}
	common.ValidateBackendRefs(errs, def.Field("backendRefs"), refs, backendRefs)
}

func hasRedirect(filters []Filter) bool {
	for _, f := range filters {
		if f.Type == RequestRedirectType {
			return true
		}
	}
	return false
}

func validateMatch(errs *validate.Errors, path validate.Path, m Match) {
	if m.Path != nil {
		validatePathMatch(errs, path.Field("path"), *m.Path)
	}
	if m.Method != nil {
		validate.Enum(errs, path.Field("method"), string(*m.Method), methods...)
	}
	seen := map[string]bool{}
	for i, q := range m.QueryParams {
		p := path.Field("queryParams").Index(i)
		validate.Enum(errs, p.Field("type"), string(q.Type), string(ExactQueryMatch), string(RegularExpressionQueryMatch))
		if q.Name == "" {
			errs.Add(p.Field("name"), "must be defined")
		} else if seen[q.Name] {
			errs.Addf(p.Field("name"), "multiple entries for name %s", q.Name)
		}
		seen[q.Name] = true
		if q.Type == RegularExpressionQueryMatch {
			validateRegex(errs, p.Field("value"), q.Value)
		}
	}
	for i, h := range m.Headers {
		validateHeaderMatch(errs, path.Field("headers").Index(i), h)
	}
}

func validatePathMatch(errs *validate.Errors, path validate.Path, m PathMatch) {
	value := path.Field("value")
	validate.Enum(errs, path.Field("type"), string(m.Type), string(Exact), string(PathPrefix), string(RegularExpression))
	if m.Value == "" {
		errs.Add(value, "must be defined")
		return
	}
	switch m.Type {
	case RegularExpression:
		validateRegex(errs, value, m.Value)
	case PathPrefix:
		if m.Value == "/" {
			return
		}
		if strings.HasSuffix(m.Value, "/") {
			errs.Add(value, "does not need a trailing slash because only a `/`-separated prefix or an entire path is matched")
		}
		if !strings.HasPrefix(m.Value, "/") {
			errs.Add(value, "must be an absolute path")
		}
	case Exact:
		if !strings.HasPrefix(m.Value, "/") {
			errs.Add(value, "must be an absolute path")
		}
	}
}

func validateHeaderMatch(errs *validate.Errors, path validate.Path, h HeaderMatch) {
	validateHeaderName(errs, path.Field("name"), h.Name)
	typ := HeaderMatchExact
	if h.Type != nil {
		typ = *h.Type
		validate.Enum(errs, path.Field("type"), string(typ), string(HeaderMatchExact), string(HeaderMatchPresent),
			string(HeaderMatchRegularExpression), string(HeaderMatchAbsent), string(HeaderMatchPrefix))
	}
	switch typ {
	case HeaderMatchPresent, HeaderMatchAbsent:
		if h.Value != "" {
			errs.Addf(path.Field("value"), "must not be defined with type %s", typ)
		}
	case HeaderMatchRegularExpression:
		validateRegex(errs, path.Field("value"), h.Value)
	}
}

func validateHeaderName(errs *validate.Errors, path validate.Path, name string) {
	switch {
	case name == "":
		errs.Add(path, "must be defined")
	case len(name) > 256:
		errs.Add(path, "must be at most 256 characters long")
	case !headerNameRE.MatchString(name):
		errs.Add(path, "must be a lower-case HTTP header name (letters, digits and !#$%&'*+-.^_`|~)")
	}
}

func validateRegex(errs *validate.Errors, path validate.Path, expr string) {
	if _, err := regexp.Compile(expr); err != nil {
		errs.Addf(path, "must be a valid RE2 regular expression: %v", err)
	}
}
