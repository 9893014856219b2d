package ca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/resource"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
)

// ValidateMesh checks what a Mesh's own Validate cannot: that the
// certificate and key of every provided backend load (files, Secrets of
// the mesh), form a pair, and make a CA. It returns a *validate.Error whose
// paths start at the spec (mtls.backends[0].conf.cert). mtls.skipValidation
// turns it off, as in Kuma.
func (m *Manager) ValidateMesh(ctx context.Context, meshName string, spec *mesh.Mesh) error {
	if spec == nil || spec.MTLS == nil || (spec.MTLS.SkipValidation != nil && *spec.MTLS.SkipValidation) {
		return nil
	}
	var errs validate.Errors
	for i := range spec.MTLS.Backends {
		b := &spec.MTLS.Backends[i]
		if b.Type != mesh.CAProvided || b.Conf == nil {
			continue
		}
		conf := validate.Root().Field("mtls").Field("backends").Index(i).Field("conf")
		certPEM, certErr := m.LoadDataSource(ctx, meshName, b.Conf.Cert)
		if certErr != nil {
			errs.Add(conf.Field("cert"), "could not load data: "+certErr.Error())
		}
		keyPEM, keyErr := m.LoadDataSource(ctx, meshName, b.Conf.Key)
		if keyErr != nil {
			errs.Add(conf.Field("key"), "could not load data: "+keyErr.Error())
		}
		if certErr == nil && keyErr == nil {
			validatePair(&errs, conf.Field("cert"), certPEM, keyPEM)
		}
	}
	return errs.Err()
}

// validatePair reports a certificate and key that are no CA key pair.
func validatePair(errs *validate.Errors, path validate.Path, certPEM, keyPEM []byte) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		errs.Add(path, "not a valid TLS key pair: "+err.Error())
		return
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		errs.Add(path.Index(0), "not a valid X.509 certificate: "+err.Error())
		return
	}
	if err := checkCA(cert); err != nil {
		var u interface{ Unwrap() []error }
		list := []error{err}
		if errors.As(err, &u) {
			list = u.Unwrap()
		}
		for _, e := range list {
			errs.Add(path.Index(0), e.Error())
		}
	}
}

// ValidateHook returns a check for the manager to run before a Mesh is
// written: a Mesh whose provided CA does not load or is no CA is refused
// with field paths.
func (m *Manager) ValidateHook() func(ctx context.Context, res *resource.Resource) error {
	return func(ctx context.Context, res *resource.Resource) error {
		if res.Desc.Kind != kinds.Mesh {
			return nil
		}
		spec, ok := res.Spec.(*mesh.Mesh)
		if !ok {
			return nil
		}
		return m.ValidateMesh(ctx, res.Meta.Name, spec)
	}
}
