package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trellis-mesh/trellis/api/mesh"
	"github.com/trellis-mesh/trellis/api/system"
	"github.com/trellis-mesh/trellis/api/validate"
	"github.com/trellis-mesh/trellis/internal/ca"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store/memory"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newManager(t *testing.T) *manager.Manager {
	t.Helper()
	return manager.New(memory.New(), kinds.Registry())
}

// apply decodes a YAML manifest as a user would send it and stores it.
func apply(t *testing.T, mgr *manager.Manager, doc string) (*mesh.Mesh, error) {
	t.Helper()
	res, err := kinds.Registry().Decode([]byte(doc))
	if err != nil {
		t.Fatalf("decoding:\n%s\n%v", doc, err)
	}
	_, err = mgr.Apply(context.Background(), res)
	spec, _ := res.Spec.(*mesh.Mesh)
	return spec, err
}

func mustApply(t *testing.T, mgr *manager.Manager, doc string) *mesh.Mesh {
	t.Helper()
	spec, err := apply(t, mgr, doc)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func parseCert(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatalf("no PEM in %q", pemBytes)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func secretData(t *testing.T, mgr *manager.Manager, meshName, name string) []byte {
	t.Helper()
	d, _ := mgr.Registry().ByKind(kinds.Secret)
	res, err := mgr.Get(context.Background(), d, meshName, name)
	if err != nil {
		t.Fatalf("secret %s: %v", name, err)
	}
	b, err := res.Spec.(*system.Secret).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const builtinMesh = `type: Mesh
name: demo
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
    dpCert:
      rotation:
        expiration: 1h
    conf:
      caCert:
        expiration: 1y
`

// A builtin CA is generated once, stored under Kuma's Secret names as
// base64 PEM, and reused.
func TestBuiltinStoredOnceAndReused(t *testing.T) {
	mgr := newManager(t)
	spec := mustApply(t, mgr, builtinMesh)
	m := ca.New(mgr, quiet)
	ctx := context.Background()
	first, err := m.Mesh(ctx, "demo", spec)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := secretData(t, mgr, "demo", "demo.ca-builtin-cert-ca-1")
	keyPEM := secretData(t, mgr, "demo", "demo.ca-builtin-key-ca-1")
	if string(certPEM) != string(first.Enabled().CertPEM) || string(first.TrustBundle()) != string(certPEM) {
		t.Fatal("the CA in use is not the stored one")
	}
	cert := parseCert(t, certPEM)
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatalf("generated CA: IsCA=%v usage=%v", cert.IsCA, cert.KeyUsage)
	}
	if k, ok := cert.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 {
		t.Fatalf("CA key %T, want RSA 2048", cert.PublicKey)
	}
	if got := cert.NotAfter.Sub(time.Now()); got < 364*24*time.Hour || got > 366*24*time.Hour {
		t.Fatalf("CA validity %v, want caCert.expiration 1y", got)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != "spiffe://demo" {
		t.Fatalf("CA URIs %v", cert.URIs)
	}
	if !strings.Contains(string(keyPEM), "PRIVATE KEY") {
		t.Fatal("the key secret holds no PEM key")
	}
	// A second manager (another instance, or a restart) reuses it.
	second, err := ca.New(mgr, quiet).Mesh(ctx, "demo", spec)
	if err != nil {
		t.Fatal(err)
	}
	if string(second.Enabled().CertPEM) != string(certPEM) {
		t.Fatal("a second manager generated another CA")
	}
}

// Several control-plane instances (managers over one store) starting at
// once converge on one CA.
func TestBuiltinConcurrentInstancesConverge(t *testing.T) {
	mgr := newManager(t)
	spec := mustApply(t, mgr, builtinMesh)
	const n = 6
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tls, err := ca.New(mgr, quiet).Mesh(context.Background(), "demo", spec)
			if err != nil {
				errs[i] = err
				return
			}
			got[i] = string(tls.Enabled().CertPEM)
		}()
	}
	wg.Wait()
	stored := string(secretData(t, mgr, "demo", ca.BuiltinCertSecret("demo", "ca-1")))
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("instance %d: %v", i, errs[i])
		}
		if got[i] != stored {
			t.Fatalf("instance %d uses a CA that is not the stored one", i)
		}
	}
}

// A key stored without its certificate (a crash between the two writes)
// is completed, not replaced.
func TestBuiltinRepairsMissingCert(t *testing.T) {
	mgr := newManager(t)
	spec := mustApply(t, mgr, builtinMesh)
	_, keyPEM, err := ca.GenerateKey(ca.CAOptions{Algorithm: ca.ECDSA})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, mgr, fmt.Sprintf("type: Secret\nmesh: demo\nname: demo.ca-builtin-key-ca-1\ndata: %s\n", base64.StdEncoding.EncodeToString(keyPEM)))
	tls, err := ca.New(mgr, quiet).Mesh(context.Background(), "demo", spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tls.Enabled().Certificate().PublicKey.(*ecdsa.PublicKey); !ok {
		t.Fatal("the stored key was not used")
	}
}

// A workload certificate carries spiffe://<mesh>/<service>, chains to the
// CA, is for client and server auth, has an ECDSA P-256 key and lives
// dpCert.rotation.expiration.
func TestWorkloadCertificate(t *testing.T) {
	mgr := newManager(t)
	spec := mustApply(t, mgr, builtinMesh)
	tls, err := ca.New(mgr, quiet).Mesh(context.Background(), "demo", spec)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	p, renew, err := tls.Proxy([]string{"backend", "backend-admin"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != "STRICT" || p.TrustDomain != "demo" || len(p.Identities) != 2 || string(p.TrustedCAs) != string(tls.TrustBundle()) {
		t.Fatalf("model %+v", p)
	}
	id := p.Identities[0]
	if id.Service != "backend" || id.SpiffeID != "spiffe://demo/backend" {
		t.Fatalf("identity %+v", id)
	}
	leaf := parseCert(t, id.CertPEM)
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://demo/backend" {
		t.Fatalf("URI SANs %v", leaf.URIs)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(tls.TrustBundle())
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Fatalf("the workload certificate does not verify for %v: %v", usage, err)
		}
	}
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Fatalf("workload key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if leaf.IsCA {
		t.Fatal("a workload certificate must not be a CA")
	}
	if life := leaf.NotAfter.Sub(before); life < time.Hour-time.Minute || life > time.Hour+time.Minute {
		t.Fatalf("lifetime %v, want 1h", life)
	}
	if d := renew.Sub(before); d < 47*time.Minute || d > 49*time.Minute {
		t.Fatalf("reissue after %v, want 80%% of 1h", d)
	}
	block, _ := pem.Decode(id.KeyPEM)
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil || !key.PublicKey.Equal(leaf.PublicKey) {
		t.Fatalf("the key does not match the certificate: %v", err)
	}
}

// A cached certificate is served until 80% of its lifetime, then reissued.
func TestReissueAt80Percent(t *testing.T) {
	mgr := newManager(t)
	spec := mustApply(t, mgr, builtinMesh)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	m := ca.New(mgr, quiet, ca.WithClock(clock))
	tls, err := m.Mesh(context.Background(), "demo", spec)
	if err != nil {
		t.Fatal(err)
	}
	issue := func() string {
		p, _, err := tls.Proxy([]string{"web"})
		if err != nil {
			t.Fatal(err)
		}
		return string(p.Identities[0].CertPEM)
	}
	first := issue()
	advance(47 * time.Minute)
	if issue() != first {
		t.Fatal("reissued before 80% of the lifetime")
	}
	advance(time.Minute + time.Second) // 48m01s of 60m
	second := issue()
	if second == first {
		t.Fatal("not reissued after 80% of the lifetime")
	}
	if issue() != second {
		t.Fatal("the new certificate is not cached")
	}
}

// Switching the enabled backend issues certificates from the new CA; the
// trust bundle holds every backend's CA.
func TestSwitchingBackends(t *testing.T) {
	mgr := newManager(t)
	mustApply(t, mgr, "type: Mesh\nname: demo\n")
	m := ca.New(mgr, quiet)
	spec := &mesh.Mesh{MTLS: &mesh.MTLS{EnabledBackend: "old", Backends: []mesh.CertificateAuthorityBackend{
		{Name: "old", Type: mesh.CABuiltin}, {Name: "new", Type: mesh.CABuiltin},
	}}}
	ctx := context.Background()
	before, err := m.Mesh(ctx, "demo", spec)
	if err != nil {
		t.Fatal(err)
	}
	p1, _, _ := before.Proxy([]string{"web"})
	spec.MTLS.EnabledBackend = "new"
	after, err := m.Mesh(ctx, "demo", spec)
	if err != nil {
		t.Fatal(err)
	}
	p2, _, _ := after.Proxy([]string{"web"})
	if string(before.TrustBundle()) != string(after.TrustBundle()) || strings.Count(string(after.TrustBundle()), "BEGIN CERTIFICATE") != 2 {
		t.Fatal("the trust bundle must hold both CAs, whichever is enabled")
	}
	oldCA, newCA := before.Enabled().Certificate(), after.Enabled().Certificate()
	if err := parseCert(t, p1.Identities[0].CertPEM).CheckSignatureFrom(oldCA); err != nil {
		t.Fatal("first certificate not from the old CA")
	}
	if err := parseCert(t, p2.Identities[0].CertPEM).CheckSignatureFrom(newCA); err != nil {
		t.Fatal("after the switch the certificate is not from the new CA")
	}
}

// testCA is a provided CA made for a test.
type testCA struct{ certPEM, keyPEM []byte }

func newTestCA(t *testing.T) testCA {
	t.Helper()
	c, k, err := ca.GenerateCA("demo", ca.CAOptions{Algorithm: ca.ECDSA}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return testCA{c, k}
}

func indent(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n          ") }

// A provided CA loads from each data source kind and signs certificates.
func TestProvidedDataSources(t *testing.T) {
	tc := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	os.WriteFile(certFile, tc.certPEM, 0o600)
	os.WriteFile(keyFile, tc.keyPEM, 0o600)
	b64 := base64.StdEncoding.EncodeToString
	sources := map[string][2]string{
		"inline":       {"inline: " + b64(tc.certPEM), "inline: " + b64(tc.keyPEM)},
		"inlineString": {"inlineString: |\n          " + indent(string(tc.certPEM)), "inlineString: |\n          " + indent(string(tc.keyPEM))},
		"file":         {"file: " + certFile, "file: " + keyFile},
		"secret":       {"secret: my-ca-cert", "secret: my-ca-key"},
	}
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			mgr := newManager(t)
			mustApply(t, mgr, "type: Mesh\nname: demo\n")
			mustApply(t, mgr, "type: Secret\nmesh: demo\nname: my-ca-cert\ndata: "+b64(tc.certPEM)+"\n")
			mustApply(t, mgr, "type: Secret\nmesh: demo\nname: my-ca-key\ndata: "+b64(tc.keyPEM)+"\n")
			m := ca.New(mgr, quiet)
			mgr.OnValidate(m.ValidateHook())
			spec := mustApply(t, mgr, fmt.Sprintf(`type: Mesh
name: demo
mtls:
  enabledBackend: mine
  backends:
  - name: mine
    type: provided
    mode: PERMISSIVE
    conf:
      cert:
        %s
      key:
        %s
`, src[0], src[1]))
			tls, err := m.Mesh(context.Background(), "demo", spec)
			if err != nil {
				t.Fatal(err)
			}
			if string(tls.TrustBundle()) != string(tc.certPEM) {
				t.Fatal("the trust bundle is not the provided CA")
			}
			p, _, err := tls.Proxy([]string{"web"})
			if err != nil {
				t.Fatal(err)
			}
			if p.Mode != "PERMISSIVE" {
				t.Fatalf("mode %q", p.Mode)
			}
			if err := parseCert(t, p.Identities[0].CertPEM).CheckSignatureFrom(parseCert(t, tc.certPEM)); err != nil {
				t.Fatalf("not signed by the provided CA: %v", err)
			}
		})
	}
}

// A provided intermediate CA: workload certificates carry the chain up to
// the root, which is what peers trust.
func TestProvidedIntermediate(t *testing.T) {
	mgr := newManager(t)
	mustApply(t, mgr, "type: Mesh\nname: demo\n")
	root := newTestCA(t)
	interCert, interKey := intermediate(t, root)
	m := ca.New(mgr, quiet)
	b64 := base64.StdEncoding.EncodeToString
	spec := &mesh.Mesh{MTLS: &mesh.MTLS{EnabledBackend: "p", Backends: []mesh.CertificateAuthorityBackend{{
		Name: "p", Type: mesh.CAProvided, Conf: &mesh.CAConf{
			Cert: &mesh.DataSource{Inline: ptr(b64(append(append([]byte{}, interCert...), root.certPEM...)))},
			Key:  &mesh.DataSource{Inline: ptr(b64(interKey))},
		},
	}}}}
	tls, err := m.Mesh(context.Background(), "demo", spec)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := tls.Proxy([]string{"web"})
	if err != nil {
		t.Fatal(err)
	}
	rest := p.Identities[0].CertPEM
	var chain []*x509.Certificate
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AppendCertsFromPEM(root.certPEM)
	for _, c := range chain[1:] {
		inters.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters}); err != nil {
		t.Fatalf("the chain does not verify against the root: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// The API refuses a provided CA that does not load or is no CA, naming
// the field, unless mtls.skipValidation is set.
func TestProvidedValidatedOnApply(t *testing.T) {
	leafCert, leafKey := notACA(t)
	b64 := base64.StdEncoding.EncodeToString
	tc := newTestCA(t)
	other := newTestCA(t)
	cases := map[string]struct {
		cert, key string
		want      map[string]string // field → part of the reason
	}{
		"missing secret": {"secret: nope", "inline: " + b64(tc.keyPEM), map[string]string{
			"mtls.backends[0].conf.cert": "could not load data"}},
		"missing file": {"file: /nonexistent/ca.crt", "file: /nonexistent/ca.key", map[string]string{
			"mtls.backends[0].conf.cert": "could not load data", "mtls.backends[0].conf.key": "could not load data"}},
		"not a CA": {"inline: " + b64(leafCert), "inline: " + b64(leafKey), map[string]string{
			"mtls.backends[0].conf.cert[0]": "basic constraint 'CA' must be set to 'true'"}},
		"key of another CA": {"inline: " + b64(tc.certPEM), "inline: " + b64(other.keyPEM), map[string]string{
			"mtls.backends[0].conf.cert": "not a valid TLS key pair"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			mgr := newManager(t)
			mustApply(t, mgr, "type: Mesh\nname: demo\n")
			mgr.OnValidate(ca.New(mgr, quiet).ValidateHook())
			doc := fmt.Sprintf("type: Mesh\nname: demo\nmtls:\n  %%sbackends:\n  - name: p\n    type: provided\n    conf:\n      cert:\n        %s\n      key:\n        %s\n", c.cert, c.key)
			_, err := apply(t, mgr, fmt.Sprintf(doc, ""))
			var ve *validate.Error
			if !errors.As(err, &ve) {
				t.Fatalf("applied, or not a validation error: %v", err)
			}
			got := map[string]string{}
			for _, v := range ve.Violations {
				got[v.Field] += v.Reason + "; "
			}
			for field, reason := range c.want {
				if !strings.Contains(got[field], reason) {
					t.Fatalf("violations %v: want %s: %s", ve.Violations, field, reason)
				}
			}
			if _, err := apply(t, mgr, fmt.Sprintf(doc, "skipValidation: true\n  ")); err != nil {
				t.Fatalf("skipValidation: %v", err)
			}
		})
	}
}

// notACA returns a certificate without the CA basic constraint and its key.
func notACA(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	mgr := newManager(t)
	spec := mustApply(t, mgr, builtinMesh)
	tls, err := ca.New(mgr, quiet).Mesh(context.Background(), "demo", spec)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := tls.Proxy([]string{"web"})
	if err != nil {
		t.Fatal(err)
	}
	return p.Identities[0].CertPEM, p.Identities[0].KeyPEM
}
