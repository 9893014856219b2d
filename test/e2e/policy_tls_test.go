package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"testing"
	"time"
)

// tlsHandshake dials addr with TLS limited to [minV, maxV] (no client
// certificate) and returns the certificate the server presented, nil when
// the handshake failed before one arrived.
func tlsHandshake(addr string, minV, maxV uint16) (*x509.Certificate, error) {
	var got *x509.Certificate
	conf := &tls.Config{
		MinVersion:         minV,
		MaxVersion:         maxV,
		InsecureSkipVerify: true, // only the certificate's arrival matters here
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			c, err := x509.ParseCertificate(raw[0])
			got = c
			return err
		},
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addr, conf)
	if err == nil {
		c.Close()
	}
	return got, err
}

// MeshTLS in a STRICT mTLS mesh: tlsVersion min/max TLS13 on every inbound
// turns TLS 1.2 clients away while mesh traffic keeps flowing.
func TestPolicyMeshTLS(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})
	applyYAML(t, cp, mtlsMesh("STRICT", "24h"))
	applyYAML(t, cp, allowAll)
	backend := startTestApp(t, "backend-1")
	backendDP := serviceDP(t, "backend-1", "backend", "http", backend.port)
	startDP(t, cp, "backend-1", backendDP)
	out := freePort(t)
	startDP(t, cp, "client-1", clientDP(t, "client-1", map[int]string{out: "backend"}))
	c := newClient()
	url := fmt.Sprintf("http://127.0.0.1:%d/", out)
	eventually(t, 10*time.Second, "traffic over mTLS", func() error { _, err := get(c, url); return err })

	inbound := inboundAddr(t, backendDP)
	if cert, err := tlsHandshake(inbound, tls.VersionTLS12, tls.VersionTLS12); cert == nil {
		t.Fatalf("before the policy a TLS 1.2 client gets no certificate from %s: %v", inbound, err)
	}
	applyYAML(t, cp, `type: MeshTLS
name: tls13-only
mesh: default
spec:
  targetRef:
    kind: Mesh
  from:
  - targetRef:
      kind: Mesh
    default:
      tlsVersion:
        min: TLS13
        max: TLS13
`)
	within(t, cp, "backend-1", 15*time.Second, "TLS 1.2 refused by the inbound", func() error {
		if cert, _ := tlsHandshake(inbound, tls.VersionTLS12, tls.VersionTLS12); cert != nil {
			return fmt.Errorf("a TLS 1.2 handshake still got %v", sanOf(cert))
		}
		return nil
	})
	if cert, err := tlsHandshake(inbound, tls.VersionTLS13, tls.VersionTLS13); cert == nil {
		t.Fatalf("a TLS 1.3 client gets no certificate: %v", err)
	}
	seen, err := count(c, url, 20, 2)
	if err != nil || seen["backend-1"] != 20 {
		t.Fatalf("mesh traffic under TLS 1.3 only: %v, %v", seen, err)
	}
	noNacks(t, cp)
}
