package meshtimeout

import (
	"time"

	"github.com/trellis-mesh/trellis/api/common"
)

// Name prefixes of the MeshTimeout policies a new mesh gets; the full name
// is "<prefix>-<mesh>", e.g. "mesh-timeout-all-default".
const (
	DefaultNamePrefix        = "mesh-timeout-all"
	DefaultGatewayNamePrefix = "mesh-gateways-timeout-all"
)

// Timeouts Kuma uses when nothing else is configured, and therefore in the
// default policies. Inbound sidecar timeouts are twice the outbound ones
// (or disabled) so that the caller's timeout fires first.
const (
	DefaultConnectTimeout               = 5 * time.Second
	DefaultIdleTimeout                  = time.Hour
	DefaultStreamIdleTimeout            = 30 * time.Minute
	DefaultRequestTimeout               = 15 * time.Second
	DefaultGatewayIdleTimeout           = 5 * time.Minute
	DefaultGatewayStreamIdleTimeout     = 5 * time.Second
	DefaultGatewayRequestHeadersTimeout = 500 * time.Millisecond
	inboundFactor                       = 2
)

// dur renders d the way Kuma's API does ("1h0m0s", "500ms").
func dur(d time.Duration) *common.Duration {
	s := common.Duration(d.String())
	return &s
}

// DefaultSpec returns the sidecar MeshTimeout Kuma 2.14 creates in every new
// mesh (named DefaultName(mesh)): outbound defaults in `to` and more
// generous inbound timeouts in `from`.
func DefaultSpec() *Spec {
	return &Spec{
		TargetRef: &common.TargetRef{Kind: common.Mesh, ProxyTypes: []common.ProxyType{common.Sidecar}},
		To: []To{{
			TargetRef: common.TargetRef{Kind: common.Mesh},
			Default: Conf{
				ConnectionTimeout: dur(DefaultConnectTimeout),
				IdleTimeout:       dur(DefaultIdleTimeout),
				HTTP: &HTTP{
					RequestTimeout:    dur(DefaultRequestTimeout),
					StreamIdleTimeout: dur(DefaultStreamIdleTimeout),
				},
			},
		}},
		From: []From{{
			TargetRef: common.TargetRef{Kind: common.Mesh},
			Default: Conf{
				ConnectionTimeout: dur(inboundFactor * DefaultConnectTimeout),
				IdleTimeout:       dur(inboundFactor * DefaultIdleTimeout),
				HTTP: &HTTP{
					RequestTimeout:    dur(0),
					StreamIdleTimeout: dur(inboundFactor * DefaultStreamIdleTimeout),
					MaxStreamDuration: dur(0),
				},
			},
		}},
	}
}

// DefaultGatewaySpec returns the MeshTimeout for builtin gateways Kuma 2.14
// creates in every new mesh (named DefaultGatewayName(mesh)).
func DefaultGatewaySpec() *Spec {
	return &Spec{
		TargetRef: &common.TargetRef{Kind: common.Mesh, ProxyTypes: []common.ProxyType{common.Gateway}},
		To: []To{{
			TargetRef: common.TargetRef{Kind: common.Mesh},
			Default: Conf{
				IdleTimeout: dur(DefaultIdleTimeout),
				HTTP:        &HTTP{StreamIdleTimeout: dur(DefaultGatewayStreamIdleTimeout)},
			},
		}},
		From: []From{{
			TargetRef: common.TargetRef{Kind: common.Mesh},
			Default: Conf{
				IdleTimeout: dur(DefaultGatewayIdleTimeout),
				HTTP: &HTTP{
					StreamIdleTimeout:     dur(DefaultGatewayStreamIdleTimeout),
					RequestHeadersTimeout: dur(DefaultGatewayRequestHeadersTimeout),
				},
			},
		}},
	}
}

// DefaultName is the name of the default sidecar MeshTimeout of mesh.
func DefaultName(mesh string) string { return DefaultNamePrefix + "-" + mesh }

// DefaultGatewayName is the name of the default gateway MeshTimeout of mesh.
func DefaultGatewayName(mesh string) string { return DefaultGatewayNamePrefix + "-" + mesh }

// Defaults returns the MeshTimeout policies a new mesh gets, by name.
func Defaults(mesh string) map[string]*Spec {
	return map[string]*Spec{
		DefaultName(mesh):        DefaultSpec(),
		DefaultGatewayName(mesh): DefaultGatewaySpec(),
	}
}
