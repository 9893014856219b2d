// Package mesh holds the flat resource kinds that describe a mesh and the
// proxies in it: Mesh, Dataplane, ZoneIngress, ZoneEgress and MeshGateway.
//
// The Go types mirror Kuma 2.14's Universal JSON (protojson of
// api/mesh/v1alpha1/*.proto): camelCase field names, durations as strings
// such as "5s", wrapper types as plain values, bytes as base64 strings.
// Optional scalars are pointers so that an explicit zero the user applied
// reads back unchanged. Each kind's Validate implements Kuma's validation
// with field paths relative to the resource root, e.g.
// "networking.inbound[0].port".
package mesh

import (
	"regexp"

	"github.com/trellis-mesh/trellis/api/validate"
)

// Well-known tags.
const (
	// ServiceTag names the service an inbound (or gateway) belongs to; every
	// inbound must carry it.
	ServiceTag = "kuma.io/service"
	// ProtocolTag declares the protocol of an inbound; one of the Protocol*
	// constants, tcp when absent.
	ProtocolTag = "kuma.io/protocol"
	// ZoneTag is set by the control plane to the zone a proxy runs in.
	ZoneTag = "kuma.io/zone"
	// ExternalServiceTag marks endpoints of an external service.
	ExternalServiceTag = "kuma.io/external-service-name"
)

// Values of the kuma.io/protocol tag.
const (
	ProtocolTCP   = "tcp"
	ProtocolHTTP  = "http"
	ProtocolHTTP2 = "http2"
	ProtocolGRPC  = "grpc"
	ProtocolTLS   = "tls"
	ProtocolKafka = "kafka"
)

// SupportedProtocols lists the accepted values of the kuma.io/protocol tag.
var SupportedProtocols = []string{ProtocolTCP, ProtocolHTTP, ProtocolHTTP2, ProtocolGRPC, ProtocolTLS, ProtocolKafka}

// IsSupportedProtocol reports whether p is an accepted kuma.io/protocol value.
func IsSupportedProtocol(p string) bool {
	for _, s := range SupportedProtocols {
		if p == s {
			return true
		}
	}
	return false
}

var (
	tagNameRE     = regexp.MustCompile(`^[a-zA-Z0-9.\-_:/]*$`)
	tagValueRE    = regexp.MustCompile(`^[a-zA-Z0-9.\-_:/]*$`)
	selectorValRE = regexp.MustCompile(`^([a-zA-Z0-9.\-_:/]*|\*)$`)
)

// tagRules says what a set of tags must look like.
type tagRules struct {
	// requireService reports a missing kuma.io/service at tags["kuma.io/service"].
	requireService bool
	// atLeastOne requires a non-empty map.
	atLeastOne bool
	// selector allows "*" as a value (match any non-empty value).
	selector bool
	// forbidden lists tag names that must not appear.
	forbidden []string
}

// MsgServiceTagMissing is the reason given when a tag set lacks kuma.io/service.
const MsgServiceTagMissing = `mandatory tag "kuma.io/service" is missing`

// validateTags checks tag names and values at path (a map field such as
// "networking.inbound[0].tags").
func validateTags(errs *validate.Errors, path validate.Path, tags map[string]string, r tagRules) {
	if r.atLeastOne && len(tags) == 0 {
		errs.Add(path, "must have at least one tag")
	}
	for _, k := range validate.SortedKeys(tags) {
		v := tags[k]
		if k == "" {
			errs.Add(path, "tag name must be non-empty")
		} else if !tagNameRE.MatchString(k) {
			errs.Add(path.Key(k), "tag name must consist of alphanumeric characters, dots, dashes, slashes, colons and underscores")
		}
		for _, f := range r.forbidden {
			if k == f {
				errs.Addf(path.Key(k), "tag name must not be %q", k)
			}
		}
		switch {
		case v == "":
			errs.Add(path.Key(k), "tag value must be non-empty")
		case r.selector && !selectorValRE.MatchString(v):
			errs.Add(path.Key(k), `tag value must consist of alphanumeric characters, dots, dashes, slashes, colons and underscores or be "*"`)
		case !r.selector && !tagValueRE.MatchString(v):
			errs.Add(path.Key(k), "tag value must consist of alphanumeric characters, dots, dashes, slashes, colons and underscores")
		}
	}
	if _, ok := tags[ServiceTag]; r.requireService && !ok && !(r.atLeastOne && len(tags) == 0) {
		errs.Add(path.Key(ServiceTag), MsgServiceTagMissing)
	}
}

// validateProtocolTag checks the kuma.io/protocol tag, when present.
func validateProtocolTag(errs *validate.Errors, path validate.Path, tags map[string]string) {
	if p, ok := tags[ProtocolTag]; ok && p != "" && !IsSupportedProtocol(p) {
		validate.Enum(errs, path.Key(ProtocolTag), p, SupportedProtocols...)
	}
}
