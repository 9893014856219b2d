package meshtrace

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

// topRefs are the kinds Kuma 2.14 accepts for a MeshTrace's targetRef.
// Unlike the route policies, a MeshGateway ref may not carry listener tags.
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
		common.ValidateTargetRef(&errs, root.Field("targetRef"), *s.TargetRef, topRefs)
	}
	def := root.Field("default")
	backends := def.Field("backends")
	switch {
	case s.Default.Backends == nil:
		errs.Add(backends, "must be defined")
	case len(*s.Default.Backends) > 1:
		errs.Add(backends, "must have zero or one backend defined")
	case len(*s.Default.Backends) == 1:
		validateBackend(&errs, backends.Index(0), (*s.Default.Backends)[0])
	}
	if s.Default.Tags != nil {
		for i, tag := range *s.Default.Tags {
			validateTag(&errs, def.Field("tags").Index(i), tag)
		}
	}
	if sm := s.Default.Sampling; sm != nil {
		p := def.Field("sampling")
		common.ValidatePercentage(&errs, p.Field("overall"), sm.Overall, true)
		common.ValidatePercentage(&errs, p.Field("client"), sm.Client, true)
		common.ValidatePercentage(&errs, p.Field("random"), sm.Random, true)
	}
	return errs.Err()
}

func validateTag(errs *validate.Errors, path validate.Path, tag Tag) {
	if tag.Name == "" {
		errs.Add(path.Field("name"), "must not be empty")
	}
	if (tag.Header != nil) == (tag.Literal != nil) {
		errs.Add(path, "tag must have only one type defined: header, literal")
	}
	if tag.Header != nil && tag.Header.Name == "" {
		errs.Add(path.Field("header").Field("name"), "must not be empty")
	}
}

func validateBackend(errs *validate.Errors, path validate.Path, b Backend) {
	switch b.Type {
	case ZipkinBackendType:
		p := path.Field("zipkin")
		if b.Zipkin == nil {
			errs.Add(p, "must be defined")
			return
		}
		switch {
		case b.Zipkin.Url == "":
			errs.Add(p.Field("url"), "must not be empty")
		case !common.IsLooseURL(b.Zipkin.Url):
			errs.Add(p.Field("url"), "must be a valid url")
		}
		if v := b.Zipkin.ApiVersion; v != nil {
			validate.Enum(errs, p.Field("apiVersion"), *v, "httpJson", "httpProto")
		}
	case DatadogBackendType:
		p := path.Field("datadog")
		if b.Datadog == nil {
			errs.Add(p, "must be defined")
			return
		}
		validateDatadogURL(errs, p.Field("url"), b.Datadog.Url)
	case OpenTelemetryBackendType:
		p := path.Field("openTelemetry")
		if b.OpenTelemetry == nil {
			errs.Add(p, "must be defined")
			return
		}
		if common.ValidateOtelEndpointOrRef(errs, p, b.OpenTelemetry.Endpoint, b.OpenTelemetry.BackendRef) {
			validateOtelEndpoint(errs, p.Field("endpoint"), b.OpenTelemetry.Endpoint)
		}
	case "":
		errs.Add(path.Field("type"), "must be defined")
	default:
		validate.Enum(errs, path.Field("type"), string(b.Type),
			string(ZipkinBackendType), string(DatadogBackendType), string(OpenTelemetryBackendType))
	}
}

// validateDatadogURL requires an http URL with a host and port and nothing
// else, as the Datadog tracer does.
func validateDatadogURL(errs *validate.Errors, path validate.Path, raw string) {
	u, err := url.ParseRequestURI(raw)
	if err != nil {
		errs.Add(path, "must be a valid url")
		return
	}
	if u.Scheme != "http" {
		errs.Add(path, "scheme must be http")
	}
	if u.Port() == "" {
		errs.Add(path, "port must be defined")
	} else if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
		errs.Add(path, "port must be a valid (1-65535)")
	}
	for _, part := range []struct {
		name string
		set  bool
	}{
		{"fragment", u.Fragment != ""}, {"opaque", u.Opaque != ""}, {"path", u.Path != ""},
		{"query", u.RawQuery != ""}, {"user", u.User != nil},
	} {
		if part.set {
			errs.Add(path, part.name+" must not be defined")
		}
	}
}

// validateOtelEndpoint accepts an http(s) URL with a host, or a gRPC
// "host:port" written without a scheme.
func validateOtelEndpoint(errs *validate.Errors, path validate.Path, endpoint string) {
	u, err := url.ParseRequestURI(endpoint)
	switch {
	case err == nil && u.Host != "":
		if u.Scheme != "http" && u.Scheme != "https" {
			errs.Add(path, "URL scheme must be http or https")
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				errs.Add(path, "port must be valid (1-65535)")
			}
		}
		if u.Hostname() == "" {
			errs.Add(path, "hostname must be defined")
		}
	case strings.Contains(endpoint, "://"):
		errs.Add(path, "must be a valid URL")
	case !common.IsHost(endpoint) && !common.IsHostPort(endpoint):
		errs.Add(path, "must be a host:port or an http(s) URL")
	}
}
