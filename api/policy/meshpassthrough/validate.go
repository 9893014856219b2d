package meshpassthrough

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

// topRefs are the kinds Kuma 2.14 accepts for a MeshPassthrough's
// targetRef.
var topRefs = common.RefRules{Allowed: []common.TargetRefKind{common.Mesh, common.MeshSubset, common.Dataplane}}

var (
	protocols = []string{"tcp", "tls", "grpc", "http", "http2"}
	// l7Protocols cannot share a port with another protocol, nor match a
	// wildcard domain on every port.
	l7Protocols = map[string]bool{"grpc": true, "http": true, "http2": true}
	// partialWildcardRE matches "*foo.com": a wildcard that is not a whole
	// label.
	partialWildcardRE = regexp.MustCompile(`^\*[^.]+`)
)

// Validate checks the spec as Kuma 2.14 does; paths are relative to the
// spec.
func (s *Spec) Validate() error {
	var errs validate.Errors
	root := validate.Root()
	if s.TargetRef != nil {
		common.ValidateTargetRef(&errs, root.Field("targetRef"), *s.TargetRef, topRefs)
	}
	if s.Default == nil {
		return errs.Err()
	}
	def := root.Field("default")
	if m := s.Default.PassthroughMode; m != nil {
		validate.Enum(&errs, def.Field("passthroughMode"), *m, ModeAll, ModeMatched, ModeNone)
	}
	validateMatches(&errs, def.Field("appendMatch"), s.Default.AppendMatch)
	return errs.Err()
}

type portProtocol struct {
	port     uint32
	protocol string
}

func validateMatches(errs *validate.Errors, path validate.Path, matches []Match) {
	protocolOnPort := map[uint32]string{}
	seen := map[portProtocol]map[string]bool{}
	for i, m := range matches {
		p := path.Index(i)
		protocol := m.Protocol
		if protocol == "" {
			protocol = "tcp"
		}
		validate.Enum(errs, p.Field("protocol"), protocol, protocols...)
		if m.Port != nil {
			validate.Port(errs, p.Field("port"), *m.Port)
			if other, ok := protocolOnPort[*m.Port]; ok && other != protocol && l7Protocols[protocol] {
				errs.Add(p.Field("port"), "using the same port in multiple matches requires the same protocol for the following protocols: grpc, http, http2")
			} else {
				protocolOnPort[*m.Port] = protocol
			}
			key := portProtocol{*m.Port, protocol}
			if seen[key] == nil {
				seen[key] = map[string]bool{}
			}
			if seen[key][m.Value] {
				errs.Addf(p.Field("value"), "value %s is already defined for this port and protocol", m.Value)
			}
			seen[key][m.Value] = true
		}
		validateValue(errs, p, m, protocol)
	}
}

func validateValue(errs *validate.Errors, path validate.Path, m Match, protocol string) {
	value := path.Field("value")
	switch m.Type {
	case MatchCIDR:
		if !common.IsCIDR(m.Value) {
			errs.Add(value, "provided CIDR has incorrect value")
		}
	case MatchIP:
		if !common.IsIP(m.Value) {
			errs.Add(value, "provided IP has incorrect value")
		}
	case MatchDomain:
		if protocol == "tcp" {
			errs.Add(path.Field("protocol"), "protocol tcp is not supported for a domain")
		}
		wildcard := strings.HasPrefix(m.Value, "*")
		switch {
		case partialWildcardRE.MatchString(m.Value):
			errs.Add(value, "provided DNS has incorrect value, partial wildcard is currently not supported")
		case wildcard && !common.IsDNSName(strings.TrimPrefix(m.Value, "*.")):
			errs.Add(value, "provided DNS has incorrect value")
		case !wildcard && (common.IsIP(m.Value) || !common.IsDNSName(m.Value)):
			errs.Add(value, "provided DNS has incorrect value")
		}
		if wildcard && m.Port == nil && l7Protocols[protocol] {
			errs.Add(path.Field("port"), "wildcard domains doesn't work for all ports and layer 7 protocol")
		}
	default:
		errs.Add(path.Field("type"), fmt.Sprintf("provided type %s is not supported, one of Domain, IP, or CIDR is supported", m.Type))
	}
}
