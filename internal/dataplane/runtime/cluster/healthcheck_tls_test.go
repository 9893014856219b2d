package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/secret"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// testPKI is a CA that issues SPIFFE identities.
type testPKI struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	der  []byte
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testPKI{key: key, cert: cert, der: der}
}

// issue returns a certificate for the SPIFFE ID uri (client and server).
func (p *testPKI) issue(t *testing.T, serial int64, uri string) (tls.Certificate, []byte, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse(uri)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		URIs: []*url.URL{u}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certPEM, keyPEM
}

// TestHealthCheckOverMTLS: the checks of a cluster with an upstream TLS
// transport socket go over mTLS with the cluster's identity; a backend
// that requires a client certificate from the mesh CA sees them.
func TestHealthCheckOverMTLS(t *testing.T) {
	pki := newPKI(t)
	serverCert, _, _ := pki.issue(t, 2, "spiffe://default/backend")
	_, clientPEM, clientKey := pki.issue(t, 3, "spiffe://default/web")
	pool := x509.NewCertPool()
	pool.AddCert(pki.cert)

	var peers atomic.Value
	var checks atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			checks.Add(1)
			peers.Store(r.TLS.PeerCertificates[0].URIs[0].String())
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	secrets := secret.NewStore()
	parsed := map[string]*secret.Secret{}
	for _, s := range []*tlsv3.Secret{
		{Name: "identity:web", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: clientPEM}},
			PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: clientKey}},
		}}},
		{Name: "mesh_ca:default", Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pki.der})}},
		}}},
	} {
		p, err := secret.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		parsed[s.GetName()] = p
	}
	secrets.Swap(parsed)
	ads := &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}, ResourceApiVersion: corev3.ApiVersion_V3}
	utc, err := anypb.New(&tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: "identity:web", SdsConfig: ads}},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext: &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
				SanType: tlsv3.SubjectAltNameMatcher_URI,
				Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "spiffe://default/backend"}},
			}}},
			ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: "mesh_ca:default", SdsConfig: ads},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	def := withHealthCheck(staticCluster("m", []string{addr}), healthCheck(&corev3.HealthCheck_HttpHealthCheck{Path: "/health"}))
	def.TransportSocket = &corev3.TransportSocket{Name: TLSTransportSocketName, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: utc}}

	st := stats.NewStore()
	m := NewManager(st, secrets)
	t.Cleanup(m.Close)
	install(t, m, st, def)
	waitFor(t, 5*time.Second, "checks over mTLS", func() bool {
		return checks.Load() >= 2 && st.Snapshot()["cluster.m.health_check.success"] >= 2
	})
	if got := peers.Load(); got != "spiffe://default/web" {
		t.Fatalf("the backend saw client %v", got)
	}
}
