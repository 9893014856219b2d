package mesh

import (
	"github.com/trellis-mesh/trellis/api/common"
)

// Dataplane is the Dataplane resource: one data plane proxy, the services
// it serves (inbounds) or the gateway it is, and what it consumes
// (outbounds).
type Dataplane struct {
	// Networking describes the proxy's addresses and listeners.
	Networking *DataplaneNetworking `json:"networking,omitempty"`
	// Metrics overrides the mesh's metrics backend for this proxy.
	Metrics *MetricsBackend `json:"metrics,omitempty"`
	// Probes exposes application health endpoints without mTLS (deprecated
	// in Kuma, still accepted).
	Probes *Probes `json:"probes,omitempty"`
	// Envoy holds extra settings for the proxy itself.
	Envoy *EnvoyConfiguration `json:"envoy,omitempty"`
}

// DataplaneNetworking describes the inbound and outbound interfaces of a
// data plane proxy.
type DataplaneNetworking struct {
	// Address is the IP or hostname other proxies and the control plane
	// reach this proxy at.
	Address string `json:"address,omitempty"`
	// AdvertisedAddress is the routable address other proxies use when
	// Address is private; the proxy still binds Address.
	AdvertisedAddress string `json:"advertisedAddress,omitempty"`
	// Inbound lists the services this proxy serves.
	Inbound []Inbound `json:"inbound,omitempty"`
	// Outbound lists the services this proxy consumes on local ports.
	Outbound []Outbound `json:"outbound,omitempty"`
	// Gateway makes this proxy a gateway instead of a sidecar.
	Gateway *Gateway `json:"gateway,omitempty"`
	// TransparentProxying configures traffic redirection.
	TransparentProxying *TransparentProxying `json:"transparentProxying,omitempty"`
	// Admin configures the proxy's admin server.
	Admin *EnvoyAdmin `json:"admin,omitempty"`
}

// InboundState is the state of an inbound.
type InboundState string

// Inbound states.
const (
	// InboundReady serves traffic (the default).
	InboundReady InboundState = "Ready"
	// InboundNotReady is excluded from load balancing.
	InboundNotReady InboundState = "NotReady"
	// InboundIgnored creates no listener; the proxy still gets the identity.
	InboundIgnored InboundState = "Ignored"
)

// Inbound is a service served by the proxy.
type Inbound struct {
	// Port the proxy listens on for this service.
	Port uint32 `json:"port,omitempty"`
	// ServicePort is the application's port (defaults to Port).
	ServicePort *uint32 `json:"servicePort,omitempty"`
	// ServiceAddress is the application's IP (defaults to Address).
	ServiceAddress string `json:"serviceAddress,omitempty"`
	// Address the listener binds (defaults to networking.address).
	Address string `json:"address,omitempty"`
	// Tags of the service; kuma.io/service is required.
	Tags map[string]string `json:"tags,omitempty"`
	// Health is the externally reported health; nil means healthy.
	Health *InboundHealth `json:"health,omitempty"`
	// ServiceProbe makes the proxy health-check the application itself.
	ServiceProbe *ServiceProbe `json:"serviceProbe,omitempty"`
	// State is Ready (default), NotReady or Ignored.
	State InboundState `json:"state,omitempty"`
	// Name names the port, for MeshService references.
	Name string `json:"name,omitempty"`
}

// InboundHealth is the health of an inbound.
type InboundHealth struct {
	Ready *bool `json:"ready,omitempty"`
}

// ServiceProbe configures active health checking of the application.
type ServiceProbe struct {
	Interval           *common.Duration `json:"interval,omitempty"`
	Timeout            *common.Duration `json:"timeout,omitempty"`
	UnhealthyThreshold *uint32          `json:"unhealthyThreshold,omitempty"`
	HealthyThreshold   *uint32          `json:"healthyThreshold,omitempty"`
	// TCP checks that a TCP connection can be established.
	TCP *ServiceProbeTCP `json:"tcp,omitempty"`
}

// ServiceProbeTCP selects the TCP health checker; it has no settings.
type ServiceProbeTCP struct{}

// Outbound is a service consumed by the proxy on a local port.
type Outbound struct {
	// Address to listen on (default 127.0.0.1).
	Address string `json:"address,omitempty"`
	// Port to listen on.
	Port uint32 `json:"port,omitempty"`
	// Tags select the destination; kuma.io/service is required unless
	// BackendRef is used.
	Tags map[string]string `json:"tags,omitempty"`
	// BackendRef targets a MeshService (or similar) instead of tags.
	BackendRef *OutboundBackendRef `json:"backendRef,omitempty"`
}

// OutboundBackendRef targets a service resource by name or labels.
type OutboundBackendRef struct {
	// Kind is MeshService, MeshExternalService or MeshMultiZoneService.
	Kind   string            `json:"kind,omitempty"`
	Name   string            `json:"name,omitempty"`
	Port   uint32            `json:"port,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// GatewayType is the kind of gateway a proxy is.
type GatewayType string

// Gateway types.
const (
	// GatewayDelegated: a third-party gateway next to the proxy (the default).
	GatewayDelegated GatewayType = "DELEGATED"
	// GatewayBuiltin: the proxy itself is the gateway, configured by MeshGateway.
	GatewayBuiltin GatewayType = "BUILTIN"
)

// Gateway makes a proxy a gateway.
type Gateway struct {
	// Tags of the gateway; kuma.io/service is required.
	Tags map[string]string `json:"tags,omitempty"`
	// Type is DELEGATED (default) or BUILTIN.
	Type GatewayType `json:"type,omitempty"`
}

// IP family modes of transparent proxying.
const (
	IPFamilyUnspecified = "UnSpecified"
	IPFamilyDualStack   = "DualStack"
	IPFamilyIPv4        = "IPv4"
	IPFamilyIPv6        = "IPv6"
)

// TransparentProxying configures traffic redirection to the proxy.
type TransparentProxying struct {
	RedirectPortInbound  *uint32 `json:"redirectPortInbound,omitempty"`
	RedirectPortOutbound *uint32 `json:"redirectPortOutbound,omitempty"`
	// DirectAccessServices are reached directly on IP:PORT; "*" for all.
	DirectAccessServices []string `json:"directAccessServices,omitempty"`
	// ReachableServices limits the outbounds generated to these services.
	ReachableServices []string `json:"reachableServices,omitempty"`
	// IPFamilyMode is DualStack, IPv4 or IPv6.
	IPFamilyMode string `json:"ipFamilyMode,omitempty"`
	// ReachableBackends limits outbounds to these service resources.
	ReachableBackends *ReachableBackends `json:"reachableBackends,omitempty"`
}

// ReachableBackends lists the service resources a proxy may reach.
type ReachableBackends struct {
	Refs []ReachableBackendRef `json:"refs,omitempty"`
}

// ReachableBackendRef names a MeshService, MeshExternalService or
// MeshMultiZoneService by name or labels.
type ReachableBackendRef struct {
	Kind      string            `json:"kind,omitempty"`
	Name      string            `json:"name,omitempty"`
	Namespace string            `json:"namespace,omitempty"`
	Port      *uint32           `json:"port,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// EnvoyAdmin configures the proxy's admin server (bound to localhost).
type EnvoyAdmin struct {
	Port uint32 `json:"port,omitempty"`
}

// Probes exposes application HTTP endpoints on a port without mTLS.
type Probes struct {
	Port      uint32          `json:"port,omitempty"`
	Endpoints []ProbeEndpoint `json:"endpoints,omitempty"`
}

// ProbeEndpoint maps Path on the probes port to InboundPath on InboundPort.
type ProbeEndpoint struct {
	InboundPort uint32 `json:"inboundPort,omitempty"`
	InboundPath string `json:"inboundPath,omitempty"`
	Path        string `json:"path,omitempty"`
}

// xDS transport variants.
const (
	XDSDefault   = "DEFAULT"
	XDSDeltaGRPC = "DELTA_GRPC"
	XDSGRPC      = "GRPC"
)

// EnvoyConfiguration holds settings of the proxy itself.
type EnvoyConfiguration struct {
	// XDSTransportProtocolVariant is DEFAULT, DELTA_GRPC or GRPC.
	XDSTransportProtocolVariant string `json:"xdsTransportProtocolVariant,omitempty"`
}

// IsBuiltinGateway reports whether the proxy is a builtin gateway.
func (x *Dataplane) IsBuiltinGateway() bool {
	return x != nil && x.Networking != nil && x.Networking.Gateway != nil && x.Networking.Gateway.Type == GatewayBuiltin
}

// IsDelegatedGateway reports whether the proxy is a delegated gateway.
func (x *Dataplane) IsDelegatedGateway() bool {
	return x != nil && x.Networking != nil && x.Networking.Gateway != nil &&
		(x.Networking.Gateway.Type == "" || x.Networking.Gateway.Type == GatewayDelegated)
}

// ServiceNames returns the kuma.io/service values of the proxy: of each
// inbound in order (ignored inbounds included, as they carry identity), or
// of the gateway; without duplicates.
func (x *Dataplane) ServiceNames() []string {
	if x == nil || x.Networking == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	add := func(tags map[string]string) {
		if s := tags[ServiceTag]; s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if x.Networking.Gateway != nil {
		add(x.Networking.Gateway.Tags)
	}
	for _, in := range x.Networking.Inbound {
		add(in.Tags)
	}
	return out
}

// EffectiveState returns the inbound's state, Ready when unset.
func (in *Inbound) EffectiveState() InboundState {
	if in.State == "" {
		return InboundReady
	}
	return in.State
}

// EffectiveServicePort returns ServicePort, or Port when unset.
func (in *Inbound) EffectiveServicePort() uint32 {
	if in.ServicePort != nil && *in.ServicePort != 0 {
		return *in.ServicePort
	}
	return in.Port
}

// Protocol returns the kuma.io/protocol tag, tcp when unset.
func (in *Inbound) Protocol() string {
	if p := in.Tags[ProtocolTag]; p != "" {
		return p
	}
	return ProtocolTCP
}
