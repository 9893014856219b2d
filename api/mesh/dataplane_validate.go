package mesh

import (
	"net"

	"github.com/trellis-mesh/trellis/api/validate"
)

// Kinds a Dataplane outbound backendRef or reachable backend may name.
var backendRefKinds = []string{"MeshExternalService", "MeshMultiZoneService", "MeshService"}

// Validate checks every field, as Kuma 2.14 does: a sidecar needs at least
// one inbound, a delegated gateway takes no inbounds, a builtin gateway no
// inbounds, outbounds or probes.
func (x *Dataplane) Validate() error {
	var errs validate.Errors
	root := validate.Root()
	netPath := root.Field("networking")
	n := x.Networking
	if n == nil {
		errs.Add(netPath, "must be defined")
		return errs.Err()
	}
	switch {
	case x.IsDelegatedGateway():
		if len(n.Inbound) > 0 {
			errs.Add(netPath.Field("inbound"), "inbound cannot be defined for delegated gateways")
		}
	case x.IsBuiltinGateway():
		if len(n.Inbound) > 0 {
			errs.Add(netPath.Field("inbound"), "inbound cannot be defined for builtin gateways")
		}
		if len(n.Outbound) > 0 {
			errs.Add(netPath.Field("outbound"), "outbound cannot be defined for builtin gateways")
		}
		if x.Probes != nil {
			errs.Add(root.Field("probes"), "probes cannot be defined for builtin gateways")
		}
	case n.Gateway != nil:
		// An unknown gateway type is reported at networking.gateway.type.
	default:
		if len(n.Inbound) == 0 {
			errs.Add(netPath, "has to contain at least one inbound interface or gateway")
		}
	}
	n.validate(&errs, netPath)
	if x.Probes != nil {
		x.Probes.validate(&errs, root.Field("probes"))
	}
	if x.Metrics != nil {
		x.Metrics.validate(&errs, root.Field("metrics"))
	}
	if x.Envoy != nil && x.Envoy.XDSTransportProtocolVariant != "" {
		validate.Enum(&errs, root.Field("envoy").Field("xdsTransportProtocolVariant"), x.Envoy.XDSTransportProtocolVariant,
			XDSDefault, XDSDeltaGRPC, XDSGRPC)
	}
	return errs.Err()
}

func (n *DataplaneNetworking) validate(errs *validate.Errors, path validate.Path) {
	validateAddress(errs, path.Field("address"), n.Address)
	validateOptionalAddress(errs, path.Field("advertisedAddress"), n.AdvertisedAddress)
	for i := range n.Inbound {
		n.Inbound[i].validate(errs, path.Field("inbound").Index(i), n.Address)
	}
	for i := range n.Outbound {
		n.Outbound[i].validate(errs, path.Field("outbound").Index(i))
	}
	if n.Gateway != nil {
		n.Gateway.validate(errs, path.Field("gateway"))
	}
	if n.TransparentProxying != nil {
		n.TransparentProxying.validate(errs, path.Field("transparentProxying"))
	}
	if n.Admin != nil {
		n.validateAdmin(errs, path.Field("admin").Field("port"))
	}
}

// validateAdmin checks that the admin port (bound on 127.0.0.1) is a valid
// port that no inbound or outbound listener on the loopback also binds.
func (n *DataplaneNetworking) validateAdmin(errs *validate.Errors, path validate.Path) {
	port := n.Admin.Port
	validate.Port(errs, path, port)
	for _, in := range n.Inbound {
		addr := in.Address
		if addr == "" {
			addr = n.Address
		}
		if in.Port == port && bindsLoopback(addr) {
			errs.Add(path, "must differ from inbound")
			break
		}
	}
	for _, out := range n.Outbound {
		if out.Port == port && (out.Address == "" || bindsLoopback(out.Address)) {
			errs.Add(path, "must differ from outbound")
			break
		}
	}
}

// bindsLoopback reports whether a listener on addr would clash with one on
// 127.0.0.1.
func bindsLoopback(addr string) bool {
	ip := net.ParseIP(addr)
	return ip != nil && (ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.IsUnspecified())
}

func (in *Inbound) validate(errs *validate.Errors, path validate.Path, dpAddress string) {
	validate.Port(errs, path.Field("port"), in.Port)
	// A servicePort of 0 means "same as port", as in Kuma.
	if in.ServicePort != nil && *in.ServicePort != 0 {
		validate.Port(errs, path.Field("servicePort"), *in.ServicePort)
	}
	sameAsListener := in.EffectiveServicePort() == in.Port
	if in.ServiceAddress != "" {
		validateOptionalIP(errs, path.Field("serviceAddress"), in.ServiceAddress)
		listener := in.Address
		if listener == "" {
			listener = dpAddress
		}
		if in.ServiceAddress == listener && sameAsListener {
			errs.Add(path.Field("serviceAddress"), "serviceAddress and servicePort have to differ from address and port")
		}
	}
	validateOptionalIP(errs, path.Field("address"), in.Address)
	tags := path.Field("tags")
	validateTags(errs, tags, in.Tags, tagRules{requireService: true})
	validateProtocolTag(errs, tags, in.Tags)
	if in.State != "" {
		validate.Enum(errs, path.Field("state"), string(in.State), string(InboundReady), string(InboundNotReady), string(InboundIgnored))
	}
	if p := in.ServiceProbe; p != nil {
		pp := path.Field("serviceProbe")
		validatePositiveDuration(errs, pp.Field("interval"), p.Interval)
		validatePositiveDuration(errs, pp.Field("timeout"), p.Timeout)
		validatePositive(errs, pp.Field("unhealthyThreshold"), p.UnhealthyThreshold)
		validatePositive(errs, pp.Field("healthyThreshold"), p.HealthyThreshold)
	}
}

func (out *Outbound) validate(errs *validate.Errors, path validate.Path) {
	validate.Port(errs, path.Field("port"), out.Port)
	validateOptionalIP(errs, path.Field("address"), out.Address)
	if ref := out.BackendRef; ref != nil {
		rp := path.Field("backendRef")
		validate.Enum(errs, rp.Field("kind"), ref.Kind, backendRefKinds...)
		if ref.Name == "" && len(ref.Labels) == 0 {
			errs.Add(rp, "either 'name' or 'labels' should be specified")
		}
		if ref.Name != "" && len(ref.Labels) > 0 {
			errs.Add(rp.Field("labels"), "cannot be defined together with name")
		}
		// A MeshExternalService takes its port from its endpoints.
		if ref.Kind != "MeshExternalService" {
			validate.Port(errs, rp.Field("port"), ref.Port)
		}
		if len(out.Tags) > 0 {
			errs.Add(rp, "both backendRef and tags cannot be defined")
		}
		return
	}
	validateTags(errs, path.Field("tags"), out.Tags, tagRules{requireService: true})
}

func (g *Gateway) validate(errs *validate.Errors, path validate.Path) {
	tags := path.Field("tags")
	validateTags(errs, tags, g.Tags, tagRules{requireService: true})
	if p, ok := g.Tags[ProtocolTag]; ok && p != "" && p != ProtocolTCP {
		errs.Addf(tags.Key(ProtocolTag), "other values than tcp are not allowed, provided value %q", p)
	}
	if g.Type != "" {
		validate.Enum(errs, path.Field("type"), string(g.Type), string(GatewayDelegated), string(GatewayBuiltin))
	}
}

func (tp *TransparentProxying) validate(errs *validate.Errors, path validate.Path) {
	// 0 leaves a redirect port unset, as in Kuma.
	for _, rp := range []struct {
		name string
		port *uint32
	}{{"redirectPortInbound", tp.RedirectPortInbound}, {"redirectPortOutbound", tp.RedirectPortOutbound}} {
		if rp.port != nil && *rp.port != 0 {
			validate.Port(errs, path.Field(rp.name), *rp.port)
		}
	}
	validateNonEmptyList(errs, path.Field("directAccessServices"), tp.DirectAccessServices)
	validateNonEmptyList(errs, path.Field("reachableServices"), tp.ReachableServices)
	if tp.IPFamilyMode != "" {
		validate.Enum(errs, path.Field("ipFamilyMode"), tp.IPFamilyMode, IPFamilyUnspecified, IPFamilyDualStack, IPFamilyIPv4, IPFamilyIPv6)
	}
	if tp.ReachableBackends == nil {
		return
	}
	for i, ref := range tp.ReachableBackends.Refs {
		p := path.Field("reachableBackends").Field("refs").Index(i)
		validate.Enum(errs, p.Field("kind"), ref.Kind, backendRefKinds...)
		if ref.Name != "" {
			if reason := validate.Name(ref.Name); reason != "" {
				errs.Add(p.Field("name"), reason)
			}
		}
		switch {
		case ref.Name == "" && ref.Namespace == "" && len(ref.Labels) == 0:
			errs.Add(p.Field("name"), "name or labels are required")
		case ref.Name == "" && ref.Namespace != "":
			errs.Add(p.Field("name"), "name is required, when namespace is defined")
		}
		if (ref.Name != "" || ref.Namespace != "") && len(ref.Labels) > 0 {
			errs.Add(p.Field("labels"), "labels cannot be defined when name is specified")
		}
		validatePortPtr(errs, p.Field("port"), ref.Port)
	}
}

func (pr *Probes) validate(errs *validate.Errors, path validate.Path) {
	validate.Port(errs, path.Field("port"), pr.Port)
	for i, e := range pr.Endpoints {
		p := path.Field("endpoints").Index(i)
		validate.Port(errs, p.Field("inboundPort"), e.InboundPort)
		validateURLPath(errs, p.Field("inboundPath"), e.InboundPath)
		validateURLPath(errs, p.Field("path"), e.Path)
	}
}
