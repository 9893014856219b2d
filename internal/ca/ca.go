// Package ca gives each mesh its certificate authorities and each proxy
// its workload identities. A mesh's mtls.backends are its CAs: a builtin
// backend's CA is generated on first need and kept in two Secrets of the
// mesh (Kuma's names); a provided backend's certificate and key come from
// data sources. The enabled backend signs short-lived workload
// certificates (URI SAN spiffe://<mesh>/<service>), cached in memory and
// reissued when 80% of their lifetime has passed; every backend's CA is
// trusted, so switching the enabled backend keeps traffic flowing.
package ca

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// DefaultWorkloadCertLifetime is how long a workload certificate lives
// when the backend's dpCert.rotation.expiration is not set (Kuma's default).
const DefaultWorkloadCertLifetime = 24 * time.Hour

// renewFraction is the part of a workload certificate's lifetime after
// which it is reissued.
const renewFraction = 0.8

// Manager loads and creates meshes' CAs and issues workload certificates.
// It is safe for concurrent use.
type Manager struct {
	mgr *manager.Manager
	log *slog.Logger
	now func() time.Time

	mu sync.Mutex
	// authorities caches parsed CAs by the hash of their PEM.
	authorities map[[sha256.Size]byte]*Authority
	leaves      map[leafKey]*leafEntry
}

// Option configures a Manager.
type Option func(*Manager)

// WithClock makes the manager read the time from now (tests).
func WithClock(now func() time.Time) Option { return func(m *Manager) { m.now = now } }

// New returns a manager that keeps builtin CAs in mgr's store.
func New(mgr *manager.Manager, log *slog.Logger, opts ...Option) *Manager {
	m := &Manager{
		mgr:         mgr,
		log:         log.With("component", "ca"),
		now:         time.Now,
		authorities: map[[sha256.Size]byte]*Authority{},
		leaves:      map[leafKey]*leafEntry{},
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

// authority parses a CA, or returns the one parsed from the same PEM.
func (m *Manager) authority(backend string, certPEM, keyPEM []byte) (*Authority, error) {
	h := sha256.New()
	h.Write([]byte(backend))
	h.Write([]byte{0})
	h.Write(certPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	var k [sha256.Size]byte
	copy(k[:], h.Sum(nil))
	m.mu.Lock()
	a := m.authorities[k]
	m.mu.Unlock()
	if a != nil {
		return a, nil
	}
	a, err := parseAuthority(backend, certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if len(m.authorities) > 1024 {
		clear(m.authorities) // CAs changed many times: start over
	}
	m.authorities[k] = a
	m.mu.Unlock()
	return a, nil
}

// Backend loads one backend's CA, generating a builtin one when missing.
func (m *Manager) Backend(ctx context.Context, meshName string, b *mesh.CertificateAuthorityBackend) (*Authority, error) {
	var a *Authority
	var err error
	switch b.Type {
	case mesh.CABuiltin:
		a, err = m.ensureBuiltin(ctx, meshName, b)
	case mesh.CAProvided:
		a, err = m.loadProvided(ctx, meshName, b)
	default:
		err = fmt.Errorf("unknown CA type %q", b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("mesh %q, mTLS backend %q: %w", meshName, b.Name, err)
	}
	return a, nil
}

// EnsureBuiltin generates the missing CAs of every builtin backend of a
// mesh (enabled or not), so they exist before any proxy needs them.
func (m *Manager) EnsureBuiltin(ctx context.Context, meshName string, spec *mesh.Mesh) error {
	if spec == nil || spec.MTLS == nil {
		return nil
	}
	for i := range spec.MTLS.Backends {
		b := &spec.MTLS.Backends[i]
		if b.Type != mesh.CABuiltin {
			continue
		}
		if _, err := m.Backend(ctx, meshName, b); err != nil {
			return err
		}
	}
	return nil
}

// MeshTLS is a mesh's loaded mTLS state: the enabled CA and the trust
// bundle. It is computed once per recompute of the mesh and shared by the
// proxies built from it.
type MeshTLS struct {
	m        *Manager
	mesh     string
	mode     string
	enabled  *Authority
	lifetime time.Duration
	bundle   []byte
}

// Mesh loads the CAs of a mesh. It returns nil when mTLS is off. An error
// means the enabled backend cannot issue certificates: its proxies must
// keep their previous configuration rather than fall back to plaintext.
// A disabled backend that fails to load is left out of the trust bundle
// and logged.
func (m *Manager) Mesh(ctx context.Context, meshName string, spec *mesh.Mesh) (*MeshTLS, error) {
	enabled := spec.EnabledMTLSBackend()
	if enabled == nil {
		return nil, nil
	}
	lifetime, err := workloadLifetime(enabled)
	if err != nil {
		return nil, fmt.Errorf("mesh %q, mTLS backend %q: %w", meshName, enabled.Name, err)
	}
	t := &MeshTLS{m: m, mesh: meshName, mode: string(spec.MTLSMode()), lifetime: lifetime}
	for i := range spec.MTLS.Backends {
		b := &spec.MTLS.Backends[i]
		a, err := m.Backend(ctx, meshName, b)
		if err != nil {
			if b == enabled {
				return nil, err
			}
			m.log.Warn("a CA of the mesh is left out of the trust bundle", "mesh", meshName, "backend", b.Name, "err", err)
			continue
		}
		if b == enabled {
			t.enabled = a
		}
		t.bundle = appendPEM(t.bundle, a.CertPEM)
	}
	return t, nil
}

func appendPEM(bundle, pemBytes []byte) []byte {
	bundle = append(bundle, pemBytes...)
	if n := len(bundle); n > 0 && bundle[n-1] != '\n' {
		bundle = append(bundle, '\n')
	}
	return bundle
}

// workloadLifetime is the backend's dpCert.rotation.expiration (24h when
// unset).
func workloadLifetime(b *mesh.CertificateAuthorityBackend) (time.Duration, error) {
	if b.DPCert == nil || b.DPCert.Rotation == nil || b.DPCert.Rotation.Expiration == "" {
		return DefaultWorkloadCertLifetime, nil
	}
	d, err := mesh.ParseCertDuration(b.DPCert.Rotation.Expiration)
	if err != nil {
		return 0, fmt.Errorf("dpCert.rotation.expiration: %w", err)
	}
	if d <= 0 {
		return 0, fmt.Errorf("dpCert.rotation.expiration %q is not positive", b.DPCert.Rotation.Expiration)
	}
	return d, nil
}

// TrustBundle returns the PEM of every loaded CA of the mesh.
func (t *MeshTLS) TrustBundle() []byte { return t.bundle }

// Enabled returns the CA that signs workload certificates.
func (t *MeshTLS) Enabled() *Authority { return t.enabled }

// Proxy returns the mTLS model of a proxy serving services (its distinct
// kuma.io/service values, in order) and the time at which one of its
// certificates is due to be reissued.
func (t *MeshTLS) Proxy(services []string) (*proxymodel.MTLS, time.Time, error) {
	out := &proxymodel.MTLS{Mode: t.mode, TrustDomain: t.mesh, TrustedCAs: t.bundle}
	var renew time.Time
	for _, svc := range services {
		id, at, err := t.m.identity(t, svc)
		if err != nil {
			return nil, time.Time{}, err
		}
		out.Identities = append(out.Identities, id)
		if renew.IsZero() || at.Before(renew) {
			renew = at
		}
	}
	return out, renew, nil
}
