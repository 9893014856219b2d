package meshmetric

import (
	"regexp"
	"strings"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

// topRefs are the kinds Kuma 2.14 accepts for a MeshMetric's targetRef; a
// MeshGateway ref may pick listeners with tags.
var topRefs = common.RefRules{Allowed: []common.TargetRefKind{
	common.Mesh, common.MeshSubset, common.MeshService, common.MeshServiceSubset,
	common.MeshGateway, common.Dataplane,
}}

// Validate checks the spec as Kuma 2.14 does; paths are relative to the
// spec.
func (s *Spec) Validate() error {
	var errs validate.Errors
	root := validate.Root()
	if s.TargetRef != nil {
		common.ValidateTargetRefListenerTags(&errs, root.Field("targetRef"), *s.TargetRef, topRefs)
	}
	if s.Default == nil {
		return errs.Err()
	}
	def := root.Field("default")
	if s.Default.Sidecar != nil {
		validateSidecar(&errs, def.Field("sidecar"), *s.Default.Sidecar)
	}
	if s.Default.Applications != nil {
		for i, app := range *s.Default.Applications {
			validate.Port(&errs, def.Field("applications").Index(i).Field("port"), app.Port)
		}
	}
	if s.Default.Backends != nil {
		for i, b := range *s.Default.Backends {
			validateBackend(&errs, def.Field("backends").Index(i), b)
		}
	}
	return errs.Err()
}

func validateSidecar(errs *validate.Errors, path validate.Path, s Sidecar) {
	if s.Regex != nil {
		validateRegex(errs, path.Field("regex"), *s.Regex)
	}
	if s.Profiles == nil {
		return
	}
	p := path.Field("profiles")
	if s.Profiles.AppendProfiles != nil {
		for i, prof := range *s.Profiles.AppendProfiles {
			validate.Enum(errs, p.Field("appendProfiles").Index(i).Field("name"), prof.Name, "All", "Basic", "None")
		}
	}
	for _, list := range []struct {
		field string
		sels  *[]Selector
	}{{"exclude", s.Profiles.Exclude}, {"include", s.Profiles.Include}} {
		if list.sels == nil {
			continue
		}
		for i, sel := range *list.sels {
			sp := p.Field(list.field).Index(i)
			validate.Enum(errs, sp.Field("type"), sel.Type, "Prefix", "Regex", "Exact", "Contains")
			if sel.Type == "Regex" {
				validateRegex(errs, sp.Field("match"), sel.Match)
			}
		}
	}
}

func validateRegex(errs *validate.Errors, path validate.Path, expr string) {
	if _, err := regexp.Compile(expr); err != nil {
		errs.Addf(path, "invalid regex: %v", err)
	}
}

func validateBackend(errs *validate.Errors, path validate.Path, b Backend) {
	switch b.Type {
	case PrometheusBackendType:
		p := path.Field("prometheus")
		if b.Prometheus == nil {
			errs.Add(p, "must be defined")
			return
		}
		if b.Prometheus.Port != nil {
			validate.Port(errs, p.Field("port"), *b.Prometheus.Port)
		}
		if b.Prometheus.Path != nil && !strings.HasPrefix(*b.Prometheus.Path, "/") {
			errs.Add(p.Field("path"), "must be an absolute path")
		}
		if b.Prometheus.Tls != nil {
			validate.Enum(errs, p.Field("tls").Field("mode"), b.Prometheus.Tls.Mode, "Disabled", "ProvidedTLS", "ActiveMTLSBackend")
		}
	case OpenTelemetryBackendType:
		p := path.Field("openTelemetry")
		o := b.OpenTelemetry
		if o == nil {
			errs.Add(p, "must be defined")
			return
		}
		if common.ValidateOtelEndpointOrRef(errs, p, o.Endpoint, o.BackendRef) {
			switch {
			case strings.HasPrefix(o.Endpoint, "http://") || strings.HasPrefix(o.Endpoint, "https://"):
				errs.Add(p.Field("endpoint"), "must not use schema")
			case strings.ContainsAny(o.Endpoint, "/?#"):
				errs.Add(p.Field("endpoint"), "must be in host:port format, not a URL")
			case !common.IsHost(o.Endpoint) && !common.IsHostPort(o.Endpoint):
				errs.Add(p.Field("endpoint"), "must be a valid url")
			}
		}
		if o.RefreshInterval != nil {
			before := len(errs.Violations)
			d := validate.Duration(errs, p.Field("refreshInterval"), string(*o.RefreshInterval))
			if len(errs.Violations) == before && d <= 0 {
				errs.Add(p.Field("refreshInterval"), "must be greater than 0")
			}
		}
	case "":
		errs.Add(path.Field("type"), "must be defined")
	default:
		validate.Enum(errs, path.Field("type"), string(b.Type), string(PrometheusBackendType), string(OpenTelemetryBackendType))
	}
}
