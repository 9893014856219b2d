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

// Policies in a STRICT mTLS mesh: health checks and subset clusters speak
// mTLS like the service's own cluster; MeshTLS tlsVersion min/max TLS13 on
// every inbound turns TLS 1.2 clients away while mesh traffic keeps
// flowing.
func TestPolicyMTLS(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})
	applyYAML(t, cp, mtlsMesh("STRICT", "24h"))
	applyYAML(t, cp, allowAll)
	backend := startTestApp(t, "backend-1")
	backendDP := serviceDP(t, "backend-1", "backend", "http", backend.port)
	startDP(t, cp, "backend-1", backendDP)
	var hc []*testApp
	for _, v := range []string{"v1", "v2"} {
		app := startTestApp(t, "checked-"+v)
		startDP(t, cp, app.instance, taggedDP(t, app.instance, "checked", "http", app.port, map[string]string{"version": v}))
		hc = append(hc, app)
	}
	toBackend, toChecked := freePort(t), freePort(t)
	startDP(t, cp, "client-1", clientDP(t, "client-1", map[int]string{toBackend: "backend", toChecked: "checked"}))
	c := newClient()
	url := fmt.Sprintf("http://127.0.0.1:%d/", toBackend)
	checkedURL := fmt.Sprintf("http://127.0.0.1:%d/", toChecked)
	eventually(t, 10*time.Second, "traffic over mTLS", func() error { _, err := get(c, url); return err })
	eventually(t, 10*time.Second, "traffic over mTLS", func() error { _, err := get(c, checkedURL); return err })

	t.Run("MeshHTTPRoute/SubsetOverMTLS", func(t *testing.T) {
		applyYAML(t, cp, `type: MeshHTTPRoute
name: checked-v2
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: checked
    rules:
    - matches:
      - headers:
        - type: Exact
          name: x-version
          value: v2
      default:
        backendRefs:
        - kind: MeshServiceSubset
          name: checked
          tags:
            version: v2
`)
		within(t, cp, "client-1", 15*time.Second, "the v2 subset over mTLS", func() error {
			seen, err := count(c, checkedURL, 20, 1, "x-version", "v2")
			if err == nil && seen["checked-v2"] != 20 {
				err = fmt.Errorf("answers %v", seen)
			}
			return err
		})
	})

	t.Run("MeshHealthCheck/OverMTLS", func(t *testing.T) {
		applyYAML(t, cp, `type: MeshHealthCheck
name: checked-health
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: MeshService
      name: checked
    default:
      interval: 1s
      timeout: 500ms
      unhealthyThreshold: 2
      healthyThreshold: 1
      healthyPanicThreshold: 0
      http:
        path: /health
`)
		within(t, cp, "client-1", 15*time.Second, "health checks through the STRICT inbounds", func() error {
			for _, app := range hc {
				if app.healthChecks.Load() == 0 {
					return fmt.Errorf("no health check reached %s", app.instance)
				}
			}
			return nil
		})
		hc[1].setHealthy(false)
		within(t, cp, "client-1", 5*time.Second, "the failing instance to get no traffic", func() error {
			seen, err := count(c, checkedURL, 20, 1)
			if err == nil && seen["checked-v2"] > 0 {
				err = fmt.Errorf("answers %v", seen)
			}
			return err
		})
	})

	t.Run("MeshTLS/TLS13Only", func(t *testing.T) {
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
	})
	noNacks(t, cp)
}
