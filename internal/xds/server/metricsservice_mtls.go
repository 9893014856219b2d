package server

import (
	"crypto/x509"
	"encoding/pem"
	"slices"
	"time"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/insights"
)

// noteCertificate records in a proxy's insight (Kuma's DataplaneInsight.mTLS)
// the workload certificate its newest push carries, when that certificate
// is new: its expiry, when it was issued, the backend that issued it and
// the backends the proxy trusts. Nothing happens without mTLS.
func (s *Server) noteCertificate(ms *meshState, ps *proxyState) {
	info := ps.info()
	if ms.tls == nil || info.proxyless || info.dataplane == nil {
		return
	}
	spec, ok := info.dataplane.Spec.(*mesh.Dataplane)
	if !ok {
		return
	}
	e, err := ms.mtlsFor(spec.ServiceNames())
	if err != nil || e.leaf == nil {
		return
	}
	cert := e.leaf
	if !s.timer.newCertificate(info.nodeID, cert.notAfter) {
		return
	}
	issued := time.Now().UTC().Truncate(time.Second)
	if !cert.notBefore.IsZero() && cert.notBefore.After(issued.Add(-time.Minute)) {
		issued = cert.notBefore.UTC()
	}
	expiry := cert.notAfter.UTC()
	backend := ""
	if ms.tls.Enabled() != nil {
		backend = ms.tls.Enabled().Backend
	}
	trusted := trustedBackends(backend)
	s.insight.queue(info.key, func(in *insights.DataplaneInsight) {
		if in.MTLS == nil {
			in.MTLS = &insights.MTLS{}
		}
		in.MTLS.CertificateExpirationTime = &expiry
		in.MTLS.LastCertificateRegeneration = &issued
		in.MTLS.CertificateRegenerations++
		in.MTLS.IssuedBackend = backend
		in.MTLS.SupportedBackends = slices.Clone(trusted)
	})
}

// trustedBackends lists the backends a proxy trusts: the enabled one (the
// trust bundle holds every backend's CA, but only the enabled backend is
// known by name here).
func trustedBackends(enabled string) []string {
	if enabled == "" {
		return nil
	}
	return []string{enabled}
}

// parseLeaf returns the first certificate of a PEM chain, or nil.
func parseLeaf(chain []byte) *x509.Certificate {
	block, _ := pem.Decode(chain)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil
	}
	return cert
}

// newCertificate reports whether notAfter differs from the last
// certificate noted for the proxy, and remembers it.
func (t *xdsTimer) newCertificate(nodeID string, notAfter time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.certs == nil {
		t.certs = map[string]time.Time{}
	}
	if prev, ok := t.certs[nodeID]; ok && prev.Equal(notAfter) {
		return false
	}
	t.certs[nodeID] = notAfter
	return true
}
