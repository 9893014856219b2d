package meshaccesslog

import (
	"encoding/json"
	"regexp"
	"strings"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

// Kinds accepted by each targetRef of a MeshAccessLog in Kuma 2.14.
var (
	topRefs = common.RefRules{Allowed: []common.TargetRefKind{
		common.Mesh, common.MeshSubset, common.MeshService, common.MeshServiceSubset,
		common.MeshGateway, common.Dataplane,
	}}
	toRefs = common.RefRules{Allowed: []common.TargetRefKind{
		common.Mesh, common.MeshService, common.MeshExternalService, common.MeshMultiZoneService, common.MeshHTTPRoute,
	}}
	fromRefs = common.RefRules{Allowed: []common.TargetRefKind{common.Mesh}}
)

var (
	// otelAttributeKeyRE is the OpenTelemetry attribute key syntax Kuma
	// 2.14 enforces: lower case, '.' and '_' between alphanumerics.
	otelAttributeKeyRE = regexp.MustCompile(`^[a-z](?:[a-z0-9]|[._][a-z0-9])*$`)
	// absPathRE is an absolute Unix path or a Windows drive path.
	absPathRE = regexp.MustCompile(`^(/[^/\x00]*)+/?$|^[a-zA-Z]:\\[^\x00]*$`)
)

// Validate checks the spec as Kuma 2.14 does; paths are relative to the
// spec.
func (s *Spec) Validate() error {
	var errs validate.Errors
	root := validate.Root()
	if s.TargetRef != nil {
		common.ValidateTargetRefListenerTags(&errs, root.Field("targetRef"), *s.TargetRef, topRefs)
	}
	switch {
	case len(s.To) == 0 && len(s.From) == 0 && len(s.Rules) == 0:
		errs.Add(root, "at least one of 'from', 'to' or 'rules' has to be defined")
	case len(s.Rules) > 0 && (len(s.To) > 0 || len(s.From) > 0):
		errs.Add(root, "fields 'to' and 'from' must be empty when 'rules' is defined")
	}
	for i, to := range s.To {
		p := root.Field("to").Index(i)
		common.ValidateTargetRef(&errs, p.Field("targetRef"), to.TargetRef, toRefs)
		validateConf(&errs, p.Field("default"), to.Default)
	}
	for i, from := range s.From {
		p := root.Field("from").Index(i)
		common.ValidateTargetRef(&errs, p.Field("targetRef"), from.TargetRef, fromRefs)
		validateConf(&errs, p.Field("default"), from.Default)
	}
	for i, rule := range s.Rules {
		validateConf(&errs, root.Field("rules").Index(i).Field("default"), rule.Default)
	}
	return errs.Err()
}

func validateConf(errs *validate.Errors, path validate.Path, c Conf) {
	if c.Backends == nil {
		errs.Add(path.Field("backends"), "must be defined")
		return
	}
	for i, b := range *c.Backends {
		validateBackend(errs, path.Field("backends").Index(i), b)
	}
}

func validateBackend(errs *validate.Errors, path validate.Path, b Backend) {
	switch b.Type {
	case FileBackendType:
		p := path.Field("file")
		if b.File == nil {
			errs.Add(p, "must be defined")
			return
		}
		validateFormat(errs, p.Field("format"), b.File.Format)
		if !absPathRE.MatchString(b.File.Path) {
			errs.Add(p.Field("path"), "file backend requires a valid path")
		}
	case TCPBackendType:
		p := path.Field("tcp")
		if b.Tcp == nil {
			errs.Add(p, "must be defined")
			return
		}
		validateFormat(errs, p.Field("format"), b.Tcp.Format)
		if !common.IsLooseURL(b.Tcp.Address) {
			errs.Add(p.Field("address"), "tcp backend requires valid address")
		}
	case OpenTelemetryBackendType:
		validateOtel(errs, path.Field("openTelemetry"), b.OpenTelemetry)
	case "":
		errs.Add(path.Field("type"), "must be defined")
	default:
		validate.Enum(errs, path.Field("type"), string(b.Type),
			string(TCPBackendType), string(FileBackendType), string(OpenTelemetryBackendType))
	}
}

func validateOtel(errs *validate.Errors, path validate.Path, o *OtelBackend) {
	if o == nil {
		errs.Add(path, "must be defined")
		return
	}
	if common.ValidateOtelEndpointOrRef(errs, path, o.Endpoint, o.BackendRef) {
		switch {
		case strings.ContainsAny(o.Endpoint, "/?#"):
			errs.Add(path.Field("endpoint"), "must be in host:port format, not a URL")
		case !common.IsHost(o.Endpoint) && !common.IsHostPort(o.Endpoint):
			errs.Add(path.Field("endpoint"), "must be a host name or address, with an optional port")
		}
	}
	for i, a := range o.Attributes {
		validateAttributeKey(errs, path.Field("attributes").Index(i).Field("key"), a.Key)
	}
}

func validateAttributeKey(errs *validate.Errors, path validate.Path, key string) {
	switch {
	case key == "":
		errs.Add(path, "must be defined")
	case strings.Contains(key, "%"):
		errs.Add(path, "must be a static OpenTelemetry attribute name; placeholders are only supported in values")
	case strings.HasPrefix(key, "otel."):
		errs.Add(path, "must not use the reserved OpenTelemetry prefix 'otel.'")
	case !otelAttributeKeyRE.MatchString(key):
		errs.Add(path, "must start with a lowercase letter, use only lowercase letters, digits, '.' or '_', avoid consecutive delimiters, and end with a letter or digit")
	}
}

func validateFormat(errs *validate.Errors, path validate.Path, f *Format) {
	if f == nil {
		return
	}
	switch f.Type {
	case PlainFormatType:
		switch {
		case f.Plain == nil:
			errs.Add(path.Field("plain"), "must be defined")
		case *f.Plain == "":
			errs.Add(path.Field("plain"), "must not be empty")
		}
	case JSONFormatType:
		p := path.Field("json")
		if f.Json == nil {
			errs.Add(p, "must be defined")
			return
		}
		if len(*f.Json) == 0 {
			errs.Add(p, "must not be empty")
		}
		for i, kv := range *f.Json {
			validateJSONField(errs, p.Index(i), kv)
		}
	case "":
		errs.Add(path.Field("type"), "must be defined")
	default:
		validate.Enum(errs, path.Field("type"), string(f.Type), string(PlainFormatType), string(JSONFormatType))
	}
}

// validateJSONField checks one key of a JSON log line: both parts must be
// set and must fit inside JSON string quotes as written.
func validateJSONField(errs *validate.Errors, path validate.Path, kv JSONValue) {
	if kv.Key == "" {
		errs.Add(path.Field("key"), "key cannot be empty")
	}
	if kv.Value == "" {
		errs.Add(path.Field("value"), "value cannot be empty")
	}
	if !json.Valid([]byte(`{"` + kv.Key + `": "` + kv.Value + `"}`)) {
		errs.Add(path, "is not a valid JSON object")
	}
}
