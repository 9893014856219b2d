package tlscert_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/trellis-mesh/trellis/internal/tlscert"
)

func TestEnsureGeneratesOnceAndVerifiesForLoopback(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	crt, key := filepath.Join(dir, "api-server.crt"), filepath.Join(dir, "api-server.key")
	if err := tlscert.Ensure(crt, key, "trellis-cp api server", []string{"cp.example.com", "10.1.2.3"}); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(crt)
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", err, fi)
	}
	if err := tlscert.Ensure(crt, key, "trellis-cp api server", nil); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(crt); string(again) != string(first) {
		t.Fatal("an existing certificate was replaced")
	}
	pair, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(pair.Certificate[0])
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	host, _ := os.Hostname()
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "cp.example.com", "10.1.2.3", host} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if cert.Subject.CommonName != "trellis-cp api server" {
		t.Errorf("CN = %q", cert.Subject.CommonName)
	}
}
