package ca

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/trellis-mesh/trellis/api/mesh"
)

// errNoSource says a data source names none of its four kinds.
var errNoSource = errors.New("data source has to be chosen: secret, file, inline or inlineString")

// LoadDataSource returns the bytes of a data source: inline (base64),
// inlineString, a file on the control plane's file system, or a Secret of
// the mesh.
func (m *Manager) LoadDataSource(ctx context.Context, meshName string, d *mesh.DataSource) ([]byte, error) {
	switch {
	case d == nil:
		return nil, errNoSource
	case d.Inline != nil:
		b, err := mesh.DecodeBase64(*d.Inline)
		if err != nil {
			return nil, fmt.Errorf("inline: %w", err)
		}
		return b, nil
	case d.InlineString != nil:
		return []byte(*d.InlineString), nil
	case d.File != nil:
		b, err := os.ReadFile(*d.File)
		if err != nil {
			return nil, fmt.Errorf("reading file: %w", err)
		}
		return b, nil
	case d.Secret != nil:
		return m.secret(ctx, meshName, *d.Secret)
	}
	return nil, errNoSource
}

// providedPair loads a provided backend's certificate and key.
func (m *Manager) providedPair(ctx context.Context, meshName string, b *mesh.CertificateAuthorityBackend) (certPEM, keyPEM []byte, err error) {
	if b.Conf == nil {
		return nil, nil, errors.New("conf: the cert and key of the CA must be defined")
	}
	certPEM, err = m.LoadDataSource(ctx, meshName, b.Conf.Cert)
	if err != nil {
		return nil, nil, fmt.Errorf("conf.cert: %w", err)
	}
	keyPEM, err = m.LoadDataSource(ctx, meshName, b.Conf.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("conf.key: %w", err)
	}
	return certPEM, keyPEM, nil
}

// loadProvided returns a provided backend's CA, checked.
func (m *Manager) loadProvided(ctx context.Context, meshName string, b *mesh.CertificateAuthorityBackend) (*Authority, error) {
	certPEM, keyPEM, err := m.providedPair(ctx, meshName, b)
	if err != nil {
		return nil, err
	}
	return m.authority(b.Name, certPEM, keyPEM)
}
