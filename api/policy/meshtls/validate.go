package meshtls

import (
	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

var (
	// topRefs are the kinds Kuma 2.14 accepts for a MeshTLS's targetRef.
	topRefs = common.RefRules{Allowed: []common.TargetRefKind{common.Mesh, common.MeshSubset, common.Dataplane}}
	// fromRefs are the kinds accepted in from[].
	fromRefs = common.RefRules{Allowed: []common.TargetRefKind{common.Mesh}}
)

// tlsVersions orders the TLS versions; TLSAuto leaves the bound to Envoy.
var tlsVersions = map[string]int{"TLSAuto": -1, "TLS10": 0, "TLS11": 1, "TLS12": 2, "TLS13": 3}

// Ciphers lists the cipher suites a MeshTLS may allow.
var Ciphers = []string{
	"ECDHE-ECDSA-AES128-GCM-SHA256",
	"ECDHE-ECDSA-AES256-GCM-SHA384",
	"ECDHE-ECDSA-CHACHA20-POLY1305",
	"ECDHE-RSA-AES128-GCM-SHA256",
	"ECDHE-RSA-AES256-GCM-SHA384",
	"ECDHE-RSA-CHACHA20-POLY1305",
}

// Validate checks the spec as Kuma 2.14 does; paths are relative to the
// spec.
func (s *Spec) Validate() error {
	var errs validate.Errors
	root := validate.Root()
	meshWide := true
	if s.TargetRef != nil {
		common.ValidateTargetRef(&errs, root.Field("targetRef"), *s.TargetRef, topRefs)
		meshWide = s.TargetRef.Kind == common.Mesh
	}
	if len(s.Rules) > 0 && len(s.From) > 0 {
		errs.Add(root, "field 'from' must be empty when 'rules' is defined")
	}
	for i, r := range s.Rules {
		validateConf(&errs, root.Field("rules").Index(i).Field("default"), r.Default, meshWide)
	}
	for i, f := range s.From {
		p := root.Field("from").Index(i)
		common.ValidateTargetRef(&errs, p.Field("targetRef"), f.TargetRef, fromRefs)
		validateConf(&errs, p.Field("default"), f.Default, meshWide)
	}
	return errs.Err()
}

func validateConf(errs *validate.Errors, path validate.Path, c *Conf, meshWide bool) {
	if c == nil {
		return
	}
	if c.Mode != nil {
		validate.Enum(errs, path.Field("mode"), *c.Mode, ModeStrict, ModePermissive)
	}
	if len(c.TlsCiphers) > 0 {
		if !meshWide {
			errs.Add(path.Field("tlsCiphers"), "tlsCiphers can only be defined with top level targetRef kind: Mesh")
		} else {
			for i, cipher := range c.TlsCiphers {
				validate.Enum(errs, path.Field("tlsCiphers").Index(i), cipher, Ciphers...)
			}
		}
	}
	if c.TlsVersion != nil {
		if !meshWide {
			errs.Add(path.Field("tlsVersion"), "tlsVersion can only be defined with top level targetRef kind: Mesh")
		} else {
			validateVersion(errs, path.Field("tlsVersion"), *c.TlsVersion)
		}
	}
}

func validateVersion(errs *validate.Errors, path validate.Path, v Version) {
	lo, hi := -1, -1
	for _, b := range []struct {
		field string
		value *string
		order *int
	}{{"min", v.Min, &lo}, {"max", v.Max, &hi}} {
		if b.value == nil {
			continue
		}
		order, ok := tlsVersions[*b.value]
		if !ok {
			validate.Enum(errs, path.Field(b.field), *b.value, "TLSAuto", "TLS10", "TLS11", "TLS12", "TLS13")
			continue
		}
		*b.order = order
	}
	if lo >= 0 && hi >= 0 && lo > hi {
		errs.Add(path.Field("min"), "min version must be lower than max")
	}
}
