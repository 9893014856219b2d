package ca

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// minWorkloadCertLifetime is the shortest lifetime a workload certificate
// gets, whatever dpCert.rotation.expiration says, so that a tiny setting
// cannot make the control plane reissue certificates continuously.
const minWorkloadCertLifetime = 2 * time.Second

// leafKey identifies a cached workload certificate.
type leafKey struct{ mesh, backend, service string }

// leafEntry is one cached workload certificate. Its own lock serializes
// issuance for one service without holding up the others.
type leafEntry struct {
	mu       sync.Mutex
	ca       [sha256.Size]byte
	lifetime time.Duration
	id       proxymodel.Identity
	renewAt  time.Time
}

// identity returns the workload certificate of a service, issuing a new one
// when none is cached, the CA or the lifetime changed, or the cached one
// has reached its reissue time. It also returns that reissue time.
func (m *Manager) identity(t *MeshTLS, service string) (proxymodel.Identity, time.Time, error) {
	k := leafKey{mesh: t.mesh, backend: t.enabled.Backend, service: service}
	m.mu.Lock()
	e := m.leaves[k]
	if e == nil {
		e = &leafEntry{}
		m.leaves[k] = e
	}
	m.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := m.now()
	if e.ca == t.enabled.fingerprint && e.lifetime == t.lifetime && now.Before(e.renewAt) {
		return e.id, e.renewAt, nil
	}
	// A certificate never outlives its CA, and X.509 times have whole
	// seconds: the reissue time follows the expiry the peers will see.
	caLeft := t.enabled.cert.NotAfter.Sub(now)
	if caLeft <= 0 {
		return proxymodel.Identity{}, time.Time{}, fmt.Errorf("mesh %q, mTLS backend %q: %w", t.mesh, t.enabled.Backend, ErrExpired)
	}
	life := min(max(t.lifetime, minWorkloadCertLifetime), caLeft)
	life = now.Add(life).Truncate(time.Second).Sub(now)
	if life <= 0 {
		return proxymodel.Identity{}, time.Time{}, fmt.Errorf("mesh %q, mTLS backend %q: %w", t.mesh, t.enabled.Backend, ErrExpired)
	}
	id, err := t.enabled.issue(t.mesh, service, now, life)
	if err != nil {
		return proxymodel.Identity{}, time.Time{}, fmt.Errorf("mesh %q, mTLS backend %q: %w", t.mesh, t.enabled.Backend, err)
	}
	e.ca, e.lifetime, e.id = t.enabled.fingerprint, t.lifetime, id
	e.renewAt = renewTime(now, life)
	m.log.Debug("issued a workload certificate", "mesh", t.mesh, "backend", t.enabled.Backend, "service", service, "renewAt", e.renewAt)
	return e.id, e.renewAt, nil
}

// renewTime is when a certificate issued at issued for lifetime is due to
// be replaced.
func renewTime(issued time.Time, lifetime time.Duration) time.Time {
	return issued.Add(time.Duration(float64(lifetime) * renewFraction))
}

// Forget drops the cached workload certificates of a mesh (deleted mesh).
func (m *Manager) Forget(meshName string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.leaves {
		if k.mesh == meshName {
			delete(m.leaves, k)
		}
	}
}
