package mesh

import (
	"github.com/trellis-mesh/trellis/api/common"
	"github.com/trellis-mesh/trellis/api/validate"
)

// MaxMTLSBackends is how many certificate authority backends a mesh may
// list. Kuma 2.14 allows one; Trellis allows a few more so a CA can be
// rotated without downtime: add the new backend, switch enabledBackend
// (proxies trust every listed CA meanwhile), then remove the old one.
const MaxMTLSBackends = 5

// MTLS holds a mesh's certificate authority backends and which one is on.
type MTLS struct {
	// EnabledBackend names the backend in use; empty means mTLS is off.
	EnabledBackend string `json:"enabledBackend,omitempty"`
	// Backends lists the certificate authorities.
	Backends []CertificateAuthorityBackend `json:"backends,omitempty"`
	// SkipValidation skips the CA checks on apply.
	SkipValidation *bool `json:"skipValidation,omitempty"`
}

// CABackendType is the kind of certificate authority.
type CABackendType string

// Certificate authority types.
const (
	// CABuiltin: the control plane generates and keeps the CA.
	CABuiltin CABackendType = "builtin"
	// CAProvided: the user supplies the CA certificate and key.
	CAProvided CABackendType = "provided"
)

// MTLSMode says whether inbound listeners also accept plaintext.
type MTLSMode string

// mTLS modes.
const (
	// ModeStrict accepts only mTLS traffic (the default).
	ModeStrict MTLSMode = "STRICT"
	// ModePermissive accepts mTLS and plaintext traffic.
	ModePermissive MTLSMode = "PERMISSIVE"
)

// CertificateAuthorityBackend is one certificate authority of a mesh.
type CertificateAuthorityBackend struct {
	Name string        `json:"name,omitempty"`
	Type CABackendType `json:"type,omitempty"`
	// DPCert configures the certificates issued to data plane proxies.
	DPCert *DPCert `json:"dpCert,omitempty"`
	// Conf is the type-specific configuration: caCert for builtin, cert
	// and key for provided.
	Conf *CAConf `json:"conf,omitempty"`
	// Mode is STRICT (default) or PERMISSIVE.
	Mode MTLSMode `json:"mode,omitempty"`
	// RootChain configures fetching the root chain.
	RootChain *RootChain `json:"rootChain,omitempty"`
}

// DPCert configures data plane proxy certificates.
type DPCert struct {
	Rotation *DPCertRotation `json:"rotation,omitempty"`
	// RequestTimeout bounds a certificate request to the CA.
	RequestTimeout *common.Duration `json:"requestTimeout,omitempty"`
}

// DPCertRotation says how long issued certificates live.
type DPCertRotation struct {
	// Expiration is a validity period such as "24h", "1d" or "1y"; see
	// ParseCertDuration.
	Expiration string `json:"expiration,omitempty"`
}

// RootChain configures root chain retrieval.
type RootChain struct {
	RequestTimeout *common.Duration `json:"requestTimeout,omitempty"`
}

// CAConf is the union of the builtin and provided CA configurations.
type CAConf struct {
	// CACert configures the generated CA (builtin only).
	CACert *BuiltinCACert `json:"caCert,omitempty"`
	// Cert is the CA certificate (provided only).
	Cert *DataSource `json:"cert,omitempty"`
	// Key is the CA private key (provided only).
	Key *DataSource `json:"key,omitempty"`
}

// BuiltinCACert configures the CA certificate a builtin backend generates.
type BuiltinCACert struct {
	// RSABits is the RSA key size (default 2048).
	RSABits *uint32 `json:"RSAbits,omitempty"`
	// Expiration is the CA validity period such as "10y"; see ParseCertDuration.
	Expiration string `json:"expiration,omitempty"`
}

// RSA key sizes accepted for a builtin CA.
const (
	MinCARSABits = 2048
	MaxCARSABits = 8192
)

func (m *MTLS) validate(errs *validate.Errors, path validate.Path) {
	backends := path.Field("backends")
	if len(m.Backends) > MaxMTLSBackends {
		errs.Addf(backends, "cannot have more than %d backends", MaxMTLSBackends)
	}
	used := map[string]bool{}
	for i := range m.Backends {
		b := &m.Backends[i]
		p := backends.Index(i)
		if b.Name != "" && used[b.Name] {
			errs.Addf(p.Field("name"), "%q name is already used for another backend", b.Name)
		}
		used[b.Name] = true
		b.validate(errs, p)
	}
	if m.EnabledBackend != "" && !used[m.EnabledBackend] {
		errs.Add(path.Field("enabledBackend"), "has to be set to one of the backends in the mesh")
	}
}

func (b *CertificateAuthorityBackend) validate(errs *validate.Errors, path validate.Path) {
	validate.Required(errs, path.Field("name"), b.Name)
	if validate.Required(errs, path.Field("type"), string(b.Type)) {
		validate.Enum(errs, path.Field("type"), string(b.Type), string(CABuiltin), string(CAProvided))
	}
	if b.Mode != "" {
		validate.Enum(errs, path.Field("mode"), string(b.Mode), string(ModeStrict), string(ModePermissive))
	}
	if b.DPCert != nil {
		if b.DPCert.Rotation != nil {
			validateCertDuration(errs, path.Field("dpCert").Field("rotation").Field("expiration"), b.DPCert.Rotation.Expiration)
		}
		validatePositiveDuration(errs, path.Field("dpCert").Field("requestTimeout"), b.DPCert.RequestTimeout)
	}
	if b.RootChain != nil {
		validatePositiveDuration(errs, path.Field("rootChain").Field("requestTimeout"), b.RootChain.RequestTimeout)
	}
	conf := path.Field("conf")
	switch b.Type {
	case CABuiltin:
		if b.Conf == nil {
			return
		}
		notFor(errs, conf.Field("cert"), b.Conf.Cert != nil, b.Type)
		notFor(errs, conf.Field("key"), b.Conf.Key != nil, b.Type)
		if c := b.Conf.CACert; c != nil {
			if c.RSABits != nil && (*c.RSABits < MinCARSABits || *c.RSABits > MaxCARSABits) {
				errs.Addf(conf.Field("caCert").Field("RSAbits"), "must be in the range [%d, %d]", MinCARSABits, MaxCARSABits)
			}
			validateCertDuration(errs, conf.Field("caCert").Field("expiration"), c.Expiration)
		}
	case CAProvided:
		if b.Conf == nil {
			errs.Add(conf, "must be defined with the cert and key of the CA")
			return
		}
		notFor(errs, conf.Field("caCert"), b.Conf.CACert != nil, b.Type)
		validateDataSource(errs, conf.Field("cert"), b.Conf.Cert)
		validateDataSource(errs, conf.Field("key"), b.Conf.Key)
	}
}

// notFor reports a field set for a backend type that does not take it.
func notFor[T ~string](errs *validate.Errors, path validate.Path, set bool, typ T) {
	if set {
		errs.Addf(path, "unknown field for backend type %q", string(typ))
	}
}
