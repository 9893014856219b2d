package meshhttproute

import (
	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

// redirectStatusCodes are the status codes a RequestRedirect may answer.
var redirectStatusCodes = map[int]bool{301: true, 302: true, 303: true, 307: true, 308: true}

func validateFilter(errs *validate.Errors, path validate.Path, f Filter, matches []Match, gateway bool) {
	switch f.Type {
	case RequestHeaderModifierType:
		validateHeaderModifier(errs, path.Field("requestHeaderModifier"), f.RequestHeaderModifier)
	case ResponseHeaderModifierType:
		validateHeaderModifier(errs, path.Field("responseHeaderModifier"), f.ResponseHeaderModifier)
	case RequestRedirectType:
		validateRedirect(errs, path.Field("requestRedirect"), f.RequestRedirect, matches)
	case URLRewriteType:
		validateRewrite(errs, path.Field("urlRewrite"), f.URLRewrite, matches, gateway)
	case RequestMirrorType:
		validateMirror(errs, path.Field("requestMirror"), f.RequestMirror)
	case "":
		errs.Add(path.Field("type"), "must be defined")
	default:
		validate.Enum(errs, path.Field("type"), string(f.Type), string(RequestHeaderModifierType),
			string(ResponseHeaderModifierType), string(RequestRedirectType), string(URLRewriteType), string(RequestMirrorType))
	}
}

func validateHeaderModifier(errs *validate.Errors, path validate.Path, m *HeaderModifier) {
	if m == nil {
		errs.Add(path, "must be defined")
		return
	}
	if m.Set == nil && m.Add == nil && m.Remove == nil {
		errs.Add(path, "must have at least one defined: set, add, remove")
		return
	}
	seen := map[string]bool{}
	check := func(p validate.Path, name string) {
		validateHeaderName(errs, p, name)
		if seen[name] {
			errs.Add(p, "duplicate header name")
		}
		seen[name] = true
	}
	for _, l := range []struct {
		field string
		n     int
	}{{"set", len(m.Set)}, {"add", len(m.Add)}, {"remove", len(m.Remove)}} {
		if l.n > maxHeaderModifications {
			errs.Addf(path.Field(l.field), "must have at most %d elements", maxHeaderModifications)
		}
	}
	for i, kv := range m.Set {
		check(path.Field("set").Index(i).Field("name"), kv.Name)
	}
	for i, kv := range m.Add {
		check(path.Field("add").Index(i).Field("name"), kv.Name)
	}
	for i, name := range m.Remove {
		check(path.Field("remove").Index(i), name)
	}
}

func validateRedirect(errs *validate.Errors, path validate.Path, r *RequestRedirect, matches []Match) {
	if r == nil {
		errs.Add(path, "must be defined")
		return
	}
	if r.Scheme != nil {
		validate.Enum(errs, path.Field("scheme"), *r.Scheme, "http", "https")
	}
	validatePreciseHostname(errs, path.Field("hostname"), r.Hostname)
	validatePathRewrite(errs, path.Field("path"), r.Path, matches)
	if r.Port != nil {
		validate.Port(errs, path.Field("port"), *r.Port)
	}
	if r.StatusCode != nil && !redirectStatusCodes[*r.StatusCode] {
		errs.Addf(path.Field("statusCode"), "unknown value %d: must be one of 301, 302, 303, 307, 308", *r.StatusCode)
	}
}

func validateRewrite(errs *validate.Errors, path validate.Path, r *URLRewrite, matches []Match, gateway bool) {
	if r == nil {
		errs.Add(path, "must be defined")
		return
	}
	validatePreciseHostname(errs, path.Field("hostname"), r.Hostname)
	validatePathRewrite(errs, path.Field("path"), r.Path, matches)
	if r.HostToBackendHostname != nil && *r.HostToBackendHostname {
		if !gateway {
			errs.Add(path.Field("hostToBackendHostname"), "can only be set with MeshGateway")
		}
		if r.Hostname != nil {
			errs.Add(path.Field("hostToBackendHostname"), "cannot be set together with hostname")
		}
	}
}

func validateMirror(errs *validate.Errors, path validate.Path, m *RequestMirror) {
	if m == nil {
		errs.Add(path, "must be defined")
		return
	}
	common.ValidatePercentage(errs, path.Field("percentage"), m.Percentage, true)
	ref := path.Field("backendRef")
	common.ValidateTargetRef(errs, ref, m.BackendRef.TargetRef, mirrorRefs)
	if m.BackendRef.Port != nil {
		validate.Port(errs, ref.Field("port"), *m.BackendRef.Port)
	}
}

// validatePathRewrite checks that the field the type needs is set, and that
// a prefix replacement only follows prefix matches.
func validatePathRewrite(errs *validate.Errors, path validate.Path, r *PathRewrite, matches []Match) {
	if r == nil {
		return
	}
	validate.Enum(errs, path.Field("type"), string(r.Type), string(ReplaceFullPathType), string(ReplacePrefixMatchType))
	switch r.Type {
	case ReplaceFullPathType:
		if r.ReplaceFullPath == nil {
			errs.Add(path.Field("replaceFullPath"), "must be defined with type ReplaceFullPath")
		}
	case ReplacePrefixMatchType:
		if r.ReplacePrefixMatch == nil {
			errs.Add(path.Field("replacePrefixMatch"), "must be defined with type ReplacePrefixMatch")
		}
	}
	if r.ReplacePrefixMatch != nil && anyNonPrefixMatch(matches) {
		errs.Add(path.Field("replacePrefixMatch"), "can only appear if all matches match a path prefix")
	}
}

func anyNonPrefixMatch(matches []Match) bool {
	for _, m := range matches {
		if m.Path == nil || m.Path.Type != PathPrefix {
			return true
		}
	}
	return false
}

// validatePreciseHostname checks a host name that must be a DNS name, not
// an IP address nor a wildcard.
func validatePreciseHostname(errs *validate.Errors, path validate.Path, h *string) {
	switch {
	case h == nil:
	case common.IsIP(*h):
		errs.Add(path, "cannot be an IP address")
	case !common.IsLowerSubdomain(*h):
		errs.Add(path, "must be a lower-case RFC 1123 host name: letters, digits, '-' and '.', starting and ending with a letter or digit")
	}
}
