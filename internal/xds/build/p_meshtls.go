package build

import (
	"fmt"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/trellis-mesh/trellis/api/policy/meshtls"
	"github.com/trellis-mesh/trellis/internal/policy"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// MeshTLS (docs/xds-contract.md, "Traffic policies"), only with mTLS on:
// the TLS versions and cipher suites of the mesh-wide conf bound every
// TLS context of the proxy. Inbound: the conf for every client of the
// inbound (from[] Mesh rule, rules[] merged over it) edits the
// DownstreamTlsContext. Outbound: outbound hooks may not read inbound
// matches (plugin.go), so the conf is read from Proxy.Policies["MeshTLS"]
// .Single, which the control plane fills with the mesh-wide inbound conf
// (tlsVersion and tlsCiphers are only accepted with a top-level Mesh
// targetRef, so it is the same for every sidecar); without it upstream
// contexts keep the defaults. The mode (Strict, Permissive) is not
// applied here: the listener's chains follow the mesh's mTLS mode.

const meshTLSKind = "MeshTLS"

// tlsVersions maps MeshTLS versions to Envoy's; trellis-dp supports TLS
// 1.2 and 1.3 only.
var tlsVersions = map[string]tlsv3.TlsParameters_TlsProtocol{
	"TLSAuto": tlsv3.TlsParameters_TLS_AUTO,
	"TLS12":   tlsv3.TlsParameters_TLSv1_2,
	"TLS13":   tlsv3.TlsParameters_TLSv1_3,
}

func init() {
	register(Plugin{
		Name:  meshTLSKind,
		Order: 170,
		DownstreamTLS: func(p *proxymodel.Proxy, in *proxymodel.Inbound, tc *tlsv3.DownstreamTlsContext) error {
			conf, ok, err := inboundConf[meshtls.Conf](p, meshTLSKind, in)
			if err != nil || !ok {
				return err
			}
			if err := tlsParams(conf, tc.GetCommonTlsContext()); err != nil {
				return fmt.Errorf("inbound %s:%d: %w", in.Address, in.Port, err)
			}
			return nil
		},
		UpstreamTLS: func(p *proxymodel.Proxy, out *proxymodel.Outbound, tc *tlsv3.UpstreamTlsContext) error {
			m := p.Policies[meshTLSKind]
			if m == nil || m.Single == nil {
				return nil
			}
			conf, err := policy.Decode[meshtls.Conf](m.Single.Conf)
			if err != nil {
				return fmt.Errorf("the mesh-wide conf (%v): %w", m.Single.Origins, err)
			}
			if err := tlsParams(conf, tc.GetCommonTlsContext()); err != nil {
				return fmt.Errorf("to %s: %w", out.Service, err)
			}
			return nil
		},
	})
}

// tlsParams bounds a TLS context's versions and cipher suites by conf.
func tlsParams(conf meshtls.Conf, ctc *tlsv3.CommonTlsContext) error {
	if conf.TlsVersion == nil && len(conf.TlsCiphers) == 0 {
		return nil
	}
	if ctc == nil {
		return fmt.Errorf("no TLS context to configure")
	}
	if ctc.TlsParams == nil {
		ctc.TlsParams = &tlsv3.TlsParameters{}
	}
	if v := conf.TlsVersion; v != nil {
		if v.Min != nil {
			min, ok := tlsVersions[*v.Min]
			if !ok {
				return fmt.Errorf("tlsVersion.min %s is not supported by trellis-dp (TLSAuto, TLS12, TLS13)", *v.Min)
			}
			ctc.TlsParams.TlsMinimumProtocolVersion = min
		}
		if v.Max != nil {
			max, ok := tlsVersions[*v.Max]
			if !ok {
				return fmt.Errorf("tlsVersion.max %s is not supported by trellis-dp (TLSAuto, TLS12, TLS13)", *v.Max)
			}
			ctc.TlsParams.TlsMaximumProtocolVersion = max
		}
	}
	if len(conf.TlsCiphers) > 0 {
		ctc.TlsParams.CipherSuites = append([]string(nil), conf.TlsCiphers...)
	}
	return nil
}
