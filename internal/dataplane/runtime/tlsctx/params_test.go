package tlsctx_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/secret"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/tlsctx"
)

// ecdsaSecret returns a self-signed ECDSA P-256 certificate as an SDS
// secret.
func ecdsaSecret(t *testing.T, name string) *secret.Secret {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	inline := func(b []byte) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
	}
	s, err := secret.Parse(&tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: inline(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		PrivateKey:       inline(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var ads = &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}, ResourceApiVersion: corev3.ApiVersion_V3}

// handshake runs a TLS handshake over loopback TCP between a server and a
// client built from the given parameters and returns the client's view.
func handshake(t *testing.T, server, client *tlsv3.TlsParameters) (tls.ConnectionState, error) {
	t.Helper()
	store := secret.NewStore()
	store.Swap(map[string]*secret.Secret{"cert": ecdsaSecret(t, "cert")})
	st := tlsctx.NewStats(stats.NewStore(), "test")
	srv, err := tlsctx.NewServer(&tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsParams:                      server,
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: "cert", SdsConfig: ads}},
	}}, store, st)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := tlsctx.NewClient(&tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{TlsParams: client}}, store, st)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if tc, _, err := srv.Handshake(ctx, c); err == nil {
			_, _ = tc.Read(make([]byte, 1)) // until the client closes
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tc, err := cl.Handshake(ctx, conn)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	return tc.ConnectionState(), nil
}

func TestTLSParamsNegotiated(t *testing.T) {
	cs, err := handshake(t, nil, nil)
	if err != nil || cs.Version != tls.VersionTLS13 {
		t.Fatalf("defaults: version %x, %v; want TLS 1.3", cs.Version, err)
	}
	cs, err = handshake(t, &tlsv3.TlsParameters{TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_2}, nil)
	if err != nil || cs.Version != tls.VersionTLS12 {
		t.Fatalf("server max 1.2: version %x, %v", cs.Version, err)
	}
	for _, suite := range []struct {
		name string
		id   uint16
	}{
		{"ECDHE-ECDSA-AES256-GCM-SHA384", tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
		{"ECDHE-ECDSA-CHACHA20-POLY1305", tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
	} {
		p := &tlsv3.TlsParameters{TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_2, CipherSuites: []string{suite.name}}
		cs, err = handshake(t, p, nil)
		if err != nil || cs.CipherSuite != suite.id {
			t.Fatalf("server suite %s: got %s, %v", suite.name, tls.CipherSuiteName(cs.CipherSuite), err)
		}
		cs, err = handshake(t, nil, p)
		if err != nil || cs.CipherSuite != suite.id {
			t.Fatalf("client suite %s: got %s, %v", suite.name, tls.CipherSuiteName(cs.CipherSuite), err)
		}
	}
	// An equal-preference group.
	p := &tlsv3.TlsParameters{TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_2, CipherSuites: []string{"[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-RSA-AES128-GCM-SHA256]"}}
	if cs, err = handshake(t, p, nil); err != nil || cs.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 {
		t.Fatalf("group: got %s, %v", tls.CipherSuiteName(cs.CipherSuite), err)
	}
	// No suite in common: the handshake fails.
	_, err = handshake(t,
		&tlsv3.TlsParameters{TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_2, CipherSuites: []string{"ECDHE-ECDSA-AES256-GCM-SHA384"}},
		&tlsv3.TlsParameters{CipherSuites: []string{"ECDHE-ECDSA-AES128-GCM-SHA256"}})
	if err == nil {
		t.Fatal("no suite in common: handshake succeeded")
	}
	// A client limited to 1.2 against a server requiring 1.3 fails.
	_, err = handshake(t, &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_3},
		&tlsv3.TlsParameters{TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_2})
	if err == nil {
		t.Fatal("1.2 client, 1.3 server: handshake succeeded")
	}
}

func TestTLSParamsRejected(t *testing.T) {
	store := secret.NewStore()
	st := tlsctx.NewStats(stats.NewStore(), "test")
	for _, tc := range []struct {
		p    *tlsv3.TlsParameters
		want string
	}{
		{&tlsv3.TlsParameters{CipherSuites: []string{"ECDHE-ECDSA-AES128-GCM-SHA256", "NOPE-CIPHER"}}, `tls_params.cipher_suites[1]: "NOPE-CIPHER"`},
		{&tlsv3.TlsParameters{CipherSuites: []string{"TLS_AES_128_GCM_SHA256"}}, "TLS 1.3 suites cannot be configured"},
		{&tlsv3.TlsParameters{TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_1}, "tls_params.tls_maximum_protocol_version TLSv1_1 is not supported"},
		{&tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_3, TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_2}, "is below tls_minimum_protocol_version"},
	} {
		_, err := tlsctx.NewClient(&tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{TlsParams: tc.p}}, store, st)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.p, err, tc.want)
		}
	}
}
