package tlsctx

import (
	"crypto/tls"
	"fmt"
	"strings"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// params is a compiled TlsParameters.
type params struct {
	minVersion uint16
	maxVersion uint16
	// cipherSuites are the TLS 1.2 suites allowed, in order; nil: Go's
	// defaults. Go does not let TLS 1.3 suites be chosen (all three are
	// always offered), so cipher_suites only restricts TLS 1.2, which is
	// also what Envoy's (BoringSSL's) cipher list does.
	cipherSuites []uint16
}

// parseParams checks tls_params: protocol versions TLSv1_2 and TLSv1_3
// (TLS_AUTO: 1.2 minimum, 1.3 maximum, Envoy's defaults for both sides)
// and cipher_suites by their Envoy (OpenSSL/BoringSSL) names, "[a|b]"
// equal-preference groups included (Go has no equal preference: the
// group's suites keep their order).
func parseParams(p *tlsv3.TlsParameters) (params, error) {
	var out params
	var err error
	if out.minVersion, err = protocolVersion("tls_minimum_protocol_version", p.GetTlsMinimumProtocolVersion(), tls.VersionTLS12); err != nil {
		return out, err
	}
	if out.maxVersion, err = protocolVersion("tls_maximum_protocol_version", p.GetTlsMaximumProtocolVersion(), tls.VersionTLS13); err != nil {
		return out, err
	}
	if out.maxVersion < out.minVersion {
		return out, fmt.Errorf("tls_params: tls_maximum_protocol_version %s is below tls_minimum_protocol_version %s",
			p.GetTlsMaximumProtocolVersion(), p.GetTlsMinimumProtocolVersion())
	}
	for i, name := range p.GetCipherSuites() {
		for n := range strings.SplitSeq(strings.Trim(name, "[]"), "|") {
			id, ok := cipherSuiteIDs[strings.TrimSpace(n)]
			if !ok {
				return out, fmt.Errorf("tls_params.cipher_suites[%d]: %q is not a supported TLS 1.2 cipher suite "+
					"(TLS 1.3 suites cannot be configured: Go always offers all three)", i, n)
			}
			out.cipherSuites = append(out.cipherSuites, id)
		}
	}
	return out, nil
}

func protocolVersion(field string, v tlsv3.TlsParameters_TlsProtocol, auto uint16) (uint16, error) {
	switch v {
	case tlsv3.TlsParameters_TLS_AUTO:
		return auto, nil
	case tlsv3.TlsParameters_TLSv1_2:
		return tls.VersionTLS12, nil
	case tlsv3.TlsParameters_TLSv1_3:
		return tls.VersionTLS13, nil
	default:
		return 0, fmt.Errorf("tls_params.%s %s is not supported (TLSv1_2 or TLSv1_3)", field, v)
	}
}

// apply sets the versions and suites on cfg.
func (p *params) apply(cfg *tls.Config) {
	cfg.MinVersion, cfg.MaxVersion = p.minVersion, p.maxVersion
	cfg.CipherSuites = p.cipherSuites
}

// cipherSuiteIDs maps Envoy's cipher names to the TLS 1.2 suites Go
// implements with forward secrecy or AEAD, the ones Envoy's default list
// and Kuma's MeshTLS offer.
var cipherSuiteIDs = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	"AES128-GCM-SHA256":             tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	"AES256-GCM-SHA384":             tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	"AES128-SHA":                    tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	"AES256-SHA":                    tls.TLS_RSA_WITH_AES_256_CBC_SHA,
}
