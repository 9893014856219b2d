package mesh

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/trellis-mesh/trellis/api/validate"
)

// MeshGateway is the MeshGateway resource: the listeners a builtin gateway
// (a Dataplane with gateway type BUILTIN) opens, and which of those
// Dataplanes get them.
type MeshGateway struct {
	// Selectors pick the builtin gateway Dataplanes by their tags; each
	// must include kuma.io/service.
	Selectors []Selector `json:"selectors,omitempty"`
	// Tags are common to all listeners; routes match on them.
	Tags map[string]string `json:"tags,omitempty"`
	// Conf holds the listeners.
	Conf *MeshGatewayConf `json:"conf,omitempty"`
}

// Selector matches Dataplanes by tags; "*" matches any non-empty value.
type Selector struct {
	Match map[string]string `json:"match,omitempty"`
}

// MeshGatewayConf is the desired configuration of a MeshGateway.
type MeshGatewayConf struct {
	Listeners []MeshGatewayListener `json:"listeners,omitempty"`
}

// GatewayProtocol is the protocol a gateway listener accepts.
type GatewayProtocol string

// Gateway listener protocols.
const (
	GatewayHTTP  GatewayProtocol = "HTTP"
	GatewayHTTPS GatewayProtocol = "HTTPS"
	GatewayTCP   GatewayProtocol = "TCP"
	GatewayTLS   GatewayProtocol = "TLS"
)

// GatewayTLSMode is how a listener handles TLS.
type GatewayTLSMode string

// Gateway TLS modes.
const (
	// TLSTerminate ends TLS at the gateway with the listener's certificates.
	TLSTerminate GatewayTLSMode = "TERMINATE"
	// TLSPassthrough forwards the TLS stream untouched (TLS listeners only).
	TLSPassthrough GatewayTLSMode = "PASSTHROUGH"
)

// MeshGatewayListener is one logical listener of a gateway.
type MeshGatewayListener struct {
	// Hostname to match; empty or "*" matches all.
	Hostname string `json:"hostname,omitempty"`
	// Port to listen on.
	Port uint32 `json:"port,omitempty"`
	// Protocol is HTTP, HTTPS, TCP or TLS.
	Protocol GatewayProtocol `json:"protocol,omitempty"`
	// TLS is required for HTTPS listeners.
	TLS *MeshGatewayTLS `json:"tls,omitempty"`
	// Tags routes use to attach to this listener.
	Tags map[string]string `json:"tags,omitempty"`
	// CrossMesh lets only other meshes reach this listener.
	CrossMesh *bool `json:"crossMesh,omitempty"`
	// Resources holds per-listener limits.
	Resources *ListenerResources `json:"resources,omitempty"`
}

// MeshGatewayTLS is the TLS configuration of a listener.
type MeshGatewayTLS struct {
	// Mode is TERMINATE or PASSTHROUGH.
	Mode GatewayTLSMode `json:"mode,omitempty"`
	// Certificates hold the PEM certificate chain and key; at most one RSA
	// and one ECDSA.
	Certificates []DataSource `json:"certificates,omitempty"`
	// Options is reserved for cipher and version settings.
	Options *MeshGatewayTLSOptions `json:"options,omitempty"`
}

// MeshGatewayTLSOptions is reserved; Kuma 2.14 defines no options.
type MeshGatewayTLSOptions struct{}

// ListenerResources limits what a listener may use. Kuma writes
// connectionLimit; the proto's own spelling connection_limit is accepted too.
type ListenerResources struct {
	ConnectionLimit *uint32 `json:"connectionLimit,omitempty"`
	// ConnectionLimitProtoName is connection_limit as written in the proto.
	ConnectionLimitProtoName *uint32 `json:"connection_limit,omitempty"`
}

// Limit returns the connection limit, 0 when unset.
func (r *ListenerResources) Limit() uint32 {
	switch {
	case r == nil:
		return 0
	case r.ConnectionLimit != nil:
		return *r.ConnectionLimit
	case r.ConnectionLimitProtoName != nil:
		return *r.ConnectionLimitProtoName
	}
	return 0
}

// IsCrossMesh reports whether any listener is cross-mesh.
func (x *MeshGateway) IsCrossMesh() bool {
	if x == nil || x.Conf == nil {
		return false
	}
	for _, l := range x.Conf.Listeners {
		if isTrue(l.CrossMesh) {
			return true
		}
	}
	return false
}

// EffectiveHostname returns the listener's hostname, "*" when empty.
func (l *MeshGatewayListener) EffectiveHostname() string {
	if l.Hostname == "" {
		return "*"
	}
	return l.Hostname
}

// Tags that describe Dataplanes and must not be used as gateway tags.
var reservedGatewayTags = []string{ExternalServiceTag, ProtocolTag, ServiceTag, ZoneTag}

// Validate checks every field, as Kuma 2.14 does.
func (x *MeshGateway) Validate() error {
	var errs validate.Errors
	root := validate.Root()
	sel := root.Field("selectors")
	switch {
	case len(x.Selectors) == 0:
		errs.Add(sel, "must have at least one element")
	case len(x.Selectors) > 1 && x.IsCrossMesh():
		errs.Add(sel, "must have exactly one element when a listener is crossMesh")
	}
	for i, s := range x.Selectors {
		validateTags(&errs, sel.Index(i).Field("match"), s.Match, tagRules{requireService: true, atLeastOne: true, selector: true})
	}
	validateTags(&errs, root.Field("tags"), x.Tags, tagRules{selector: true, forbidden: reservedGatewayTags})
	conf := root.Field("conf")
	if x.Conf == nil {
		errs.Add(conf, "cannot be empty")
		return errs.Err()
	}
	listeners := conf.Field("listeners")
	if len(x.Conf.Listeners) == 0 {
		errs.Add(listeners, "cannot be empty")
	}
	for i := range x.Conf.Listeners {
		x.Conf.Listeners[i].validate(&errs, listeners.Index(i))
	}
	validateCollapsible(&errs, listeners, x.Conf.Listeners)
	return errs.Err()
}

func (l *MeshGatewayListener) validate(errs *validate.Errors, path validate.Path) {
	if l.Hostname != "" {
		validateGatewayHostname(errs, path.Field("hostname"), l.Hostname)
	}
	validate.Port(errs, path.Field("port"), l.Port)
	crossMesh := isTrue(l.CrossMesh)
	switch l.Protocol {
	case "":
		errs.Add(path.Field("protocol"), "cannot be empty")
	case GatewayHTTP, GatewayTCP, GatewayTLS:
	case GatewayHTTPS:
		switch {
		case crossMesh:
			errs.Add(path.Field("protocol"), "protocol is not supported with crossMesh")
		case l.TLS == nil:
			errs.Add(path.Field("tls"), "cannot be empty")
		case l.TLS.Mode == TLSPassthrough:
			errs.Add(path.Field("tls").Field("mode"), "mode is not supported on HTTPS listeners")
		}
	default:
		validate.Enum(errs, path.Field("protocol"), string(l.Protocol), string(GatewayHTTP), string(GatewayHTTPS), string(GatewayTCP), string(GatewayTLS))
	}
	if tls := l.TLS; tls != nil {
		tp := path.Field("tls")
		switch {
		case crossMesh:
			if tls.Mode != "" || len(tls.Certificates) > 0 {
				errs.Add(tp, "must be empty with crossMesh")
			}
		case tls.Mode == "":
			errs.Add(tp.Field("mode"), "cannot be empty")
		case tls.Mode == TLSTerminate:
			switch n := len(tls.Certificates); {
			case n == 0:
				errs.Add(tp.Field("certificates"), "cannot be empty in TLS termination mode")
			case n > 2:
				errs.Add(tp.Field("certificates"), "cannot have more than 2 certificates")
			}
		case tls.Mode == TLSPassthrough:
			if len(tls.Certificates) > 0 {
				errs.Add(tp.Field("certificates"), "must be empty in TLS passthrough mode")
			}
		default:
			validate.Enum(errs, tp.Field("mode"), string(tls.Mode), string(TLSTerminate), string(TLSPassthrough))
		}
		for i := range tls.Certificates {
			validateDataSource(errs, tp.Field("certificates").Index(i), &tls.Certificates[i])
		}
	}
	validateTags(errs, path.Field("tags"), l.Tags, tagRules{selector: true, forbidden: reservedGatewayTags})
	if r := l.Resources; r != nil && r.ConnectionLimit != nil && r.ConnectionLimitProtoName != nil {
		errs.Add(path.Field("resources").Field("connection_limit"), "cannot be set together with connectionLimit")
	}
}

// validateCollapsible checks that listeners sharing a port can share one
// Envoy listener: same protocol, distinct hostnames, one connection limit.
func validateCollapsible(errs *validate.Errors, path validate.Path, listeners []MeshGatewayListener) {
	type portInfo struct {
		protocols map[GatewayProtocol]bool
		hostnames map[string][]int
		limits    map[uint32]bool
		limited   []int
		indexes   []int
	}
	byPort := map[uint32]*portInfo{}
	var ports []uint32
	for i, l := range listeners {
		p := byPort[l.Port]
		if p == nil {
			p = &portInfo{protocols: map[GatewayProtocol]bool{}, hostnames: map[string][]int{}, limits: map[uint32]bool{}}
			byPort[l.Port] = p
			ports = append(ports, l.Port)
		}
		p.indexes = append(p.indexes, i)
		p.protocols[l.Protocol] = true
		h := l.EffectiveHostname()
		p.hostnames[h] = append(p.hostnames[h], i)
		if n := l.Resources.Limit(); n != 0 {
			p.limits[n] = true
			p.limited = append(p.limited, i)
		}
	}
	flagged := map[int]string{}
	for _, port := range ports {
		p := byPort[port]
		if len(p.protocols) > 1 {
			for _, i := range p.indexes {
				flagged[i] = "protocol conflicts with other listeners on this port"
			}
		}
		for _, h := range validate.SortedKeys(p.hostnames) {
			if idx := p.hostnames[h]; len(idx) > 1 {
				for _, i := range idx {
					if _, done := flagged[i]; !done {
						flagged[i] = fmt.Sprintf("multiple listeners for hostname %q on this port", h)
					}
				}
			}
		}
		if len(p.limits) > 1 {
			for _, i := range p.limited {
				errs.Add(path.Index(i).Field("resources").Field("connectionLimit"), "conflicting values for this port")
			}
		}
	}
	idx := make([]int, 0, len(flagged))
	for i := range flagged {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for _, i := range idx {
		errs.Add(path.Index(i), flagged[i])
	}
}

var gatewayDomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// validateGatewayHostname accepts "*", "*.domain.name" and "domain.name".
func validateGatewayHostname(errs *validate.Errors, path validate.Path, h string) {
	if h == "*" {
		return
	}
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		if !gatewayDomainRE.MatchString(rest) {
			errs.Add(path, "invalid wildcard domain")
		}
		return
	}
	if !gatewayDomainRE.MatchString(h) {
		errs.Add(path, "invalid hostname")
	}
}
