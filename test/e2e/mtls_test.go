package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// mtlsMesh turns mTLS on for the default mesh with a builtin CA.
func mtlsMesh(mode, certLifetime string) string {
	return fmt.Sprintf(`type: Mesh
name: default
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
    mode: %s
    dpCert:
      rotation:
        expiration: %s
`, mode, certLifetime)
}

const allowAll = `type: MeshTrafficPermission
name: allow-all
mesh: default
spec:
  targetRef:
    kind: Mesh
  from:
  - targetRef:
      kind: Mesh
    default:
      action: Allow
`

const denyToBackend = `type: MeshTrafficPermission
name: deny-backend
mesh: default
spec:
  targetRef:
    kind: MeshService
    name: backend
  from:
  - targetRef:
      kind: Mesh
    default:
      action: Deny
`

// peerCert dials a sidecar's inbound with TLS (no client certificate) and
// returns the certificate it presents; the handshake itself may then fail.
func peerCert(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	var got *x509.Certificate
	conf := &tls.Config{
		InsecureSkipVerify: true, // the test checks the SAN itself
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
	if got == nil {
		t.Fatalf("no certificate from %s: %v", addr, err)
	}
	return got
}

// sanOf returns a certificate's URI SANs.
func sanOf(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	return out
}

// statusOf returns the HTTP status of a GET (0 on a transport error).
func statusOf(c *http.Client, url string) int {
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// With mTLS on (STRICT): plaintext to an inbound fails; the inbound shows
// its SPIFFE identity; traffic needs a MeshTrafficPermission, follows its
// removal and return within 2 s, and a Deny for one service leaves the
// others working.
func TestMTLSStrictWithTrafficPermissions(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})
	cp.mustCtl(mtlsMesh("STRICT", "24h"), "apply", "-f", "-")
	cp.mustCtl(allowAll, "apply", "-f", "-")

	backend := startHTTPApp(t, "backend-1")
	other := startHTTPApp(t, "other-1")
	backendDP := serviceDP(t, "backend-1", "backend", "http", backend.port)
	startDP(t, cp, "backend-1", backendDP)
	startDP(t, cp, "other-1", serviceDP(t, "other-1", "other", "http", other.port))
	toBackend, toOther := freePort(t), freePort(t)
	startDP(t, cp, "frontend-1", clientDP(t, "frontend-1", map[int]string{toBackend: "backend", toOther: "other"}))
	c := newClient()
	backendURL := fmt.Sprintf("http://127.0.0.1:%d/", toBackend)
	otherURL := fmt.Sprintf("http://127.0.0.1:%d/", toOther)
	eventually(t, 5*time.Second, "frontend → backend over mTLS", func() error {
		inst, err := get(c, backendURL)
		if err == nil && inst != "backend-1" {
			err = fmt.Errorf("answered by %s", inst)
		}
		return err
	})

	// The backend's inbound: plaintext refused, SPIFFE identity presented.
	inbound := inboundAddr(t, backendDP)
	if resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + inbound + "/"); err == nil {
		resp.Body.Close()
		t.Fatalf("a plaintext request to the STRICT inbound %s got %s", inbound, resp.Status)
	}
	cert := peerCert(t, inbound)
	if sans := sanOf(cert); len(sans) != 1 || sans[0] != "spiffe://default/backend" {
		t.Fatalf("the inbound presents SANs %v, want spiffe://default/backend", sans)
	}

	// Without a permission, traffic stops within 2 s; with it, it returns.
	cp.mustCtl("", "delete", "meshtrafficpermission", "allow-all", "-m", "default")
	eventually(t, 2*time.Second, "traffic to stop without a permission", func() error {
		if s := statusOf(c, backendURL); s != http.StatusForbidden {
			return fmt.Errorf("status %d", s)
		}
		return nil
	})
	cp.mustCtl(allowAll, "apply", "-f", "-")
	eventually(t, 2*time.Second, "traffic to come back with the permission", func() error {
		_, err := get(c, backendURL)
		return err
	})

	// A Deny for backend leaves other working.
	cp.mustCtl(denyToBackend, "apply", "-f", "-")
	eventually(t, 2*time.Second, "the deny to apply", func() error {
		if s := statusOf(c, backendURL); s != http.StatusForbidden {
			return fmt.Errorf("status %d", s)
		}
		return nil
	})
	if inst, err := get(c, otherURL); err != nil || inst != "other-1" {
		t.Fatalf("other service after denying backend: %q %v", inst, err)
	}
}

// inboundAddr reads the inbound port out of a serviceDP Dataplane.
func inboundAddr(t *testing.T, dataplane string) string {
	t.Helper()
	var port int
	for _, line := range splitLines(dataplane) {
		if _, err := fmt.Sscanf(line, "  - port: %d", &port); err == nil {
			return fmt.Sprintf("127.0.0.1:%d", port)
		}
	}
	t.Fatalf("no inbound port in %s", dataplane)
	return ""
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := range len(s) {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// Workload certificates with a 1-minute lifetime rotate during a 3-minute
// fixed-rate keep-alive load with zero failed requests.
func TestWorkloadCertificatesRotateUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("3-minute rotation test skipped in -short mode")
	}
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})
	cp.mustCtl(mtlsMesh("STRICT", "1m"), "apply", "-f", "-")
	cp.mustCtl(allowAll, "apply", "-f", "-")
	backend := startHTTPApp(t, "backend-1")
	backendDP := serviceDP(t, "backend-1", "backend", "http", backend.port)
	startDP(t, cp, "backend-1", backendDP)
	out := freePort(t)
	startDP(t, cp, "frontend-1", clientDP(t, "frontend-1", map[int]string{out: "backend"}))
	c := newClient()
	url := fmt.Sprintf("http://127.0.0.1:%d/", out)
	eventually(t, 5*time.Second, "traffic over mTLS", func() error { _, err := get(c, url); return err })

	serials := map[string]bool{}
	first := peerCert(t, inboundAddr(t, backendDP))
	serials[first.SerialNumber.String()] = true
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(3 * time.Minute)
	tick := time.NewTicker(50 * time.Millisecond) // 20 req/s on one keep-alive client
	defer tick.Stop()
	lastProbe := time.Now()
	for time.Now().Before(deadline) {
		<-tick.C
		sent.Add(1)
		if _, err := get(c, url); err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
		}
		if time.Since(lastProbe) > 10*time.Second {
			lastProbe = time.Now()
			serials[peerCert(t, inboundAddr(t, backendDP)).SerialNumber.String()] = true
		}
	}
	t.Logf("%d requests, %d failed, %d distinct backend certificates seen (first valid until %s)", sent.Load(), failed.Load(), len(serials), first.NotAfter.Format(time.TimeOnly))
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed during rotation (first: %v)", failed.Load(), sent.Load(), firstErr.Load())
	}
	if len(serials) < 3 {
		t.Fatalf("only %d certificates seen in 3 minutes with a 1-minute lifetime: not rotating", len(serials))
	}
}
