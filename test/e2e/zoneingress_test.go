package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"
)

// One standalone control plane simulating two zones (zone-1 and zone-2
// by the dataplanes' kuma.io/zone tags) and a ZoneIngress serving
// zone-2. A standalone control plane treats zone tags so: a proxy of
// zone Z reaches the instances of another zone through that zone's
// ingress when one is known (directly otherwise), with the ingress's
// locality at priority 1 behind Z's own instances.
//
// A frontend in zone-1 calls a backend that runs only in zone-2: the
// connection goes frontend sidecar → tap → ingress → tap → backend
// sidecar, with mTLS end to end. The taps record every byte each way;
// the request's plaintext marker and the backend's answer never appear
// in them (the ingress only reads the SNI). Then a backend instance
// appears in zone-1 and takes all traffic (local first), and when it
// goes, traffic fails over to zone-2 again.
func TestZoneIngressCrossZone(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory", "TRELLIS_DP_SERVER_AUTHN": "none"})
	cp.mustCtl(mtlsMesh("STRICT", "24h"), "apply", "-f", "-")
	cp.mustCtl(allowAll, "apply", "-f", "-")

	// zone-2: the backend, reachable from the ingress through a tap on its
	// advertised address (127.0.0.2, forwarding to its inbound on 127.0.0.1).
	remote := startHTTPApp(t, "backend-of-zone-2")
	inPort := freePort(t)
	toBackend := startTap(t, fmt.Sprintf("127.0.0.2:%d", inPort), fmt.Sprintf("127.0.0.1:%d", inPort))
	startDP(t, cp, "backend-2", fmt.Sprintf(`type: Dataplane
mesh: default
name: backend-2
networking:
  address: 127.0.0.1
  advertisedAddress: 127.0.0.2
  inbound:
  - port: %d
    servicePort: %d
    tags: {kuma.io/service: backend, kuma.io/protocol: http, kuma.io/zone: zone-2}
`, inPort, remote.port))

	// zone-2's ingress, advertised behind a tap.
	ziPort := freePort(t)
	ziAdvertised := freeAddr(t)
	_, advPort, _ := net.SplitHostPort(ziAdvertised)
	toIngress := startTap(t, ziAdvertised, fmt.Sprintf("127.0.0.1:%d", ziPort))
	startDP(t, cp, "zi-2", fmt.Sprintf(`type: ZoneIngress
name: zi-2
zone: zone-2
networking:
  address: 127.0.0.1
  port: %d
  advertisedAddress: 127.0.0.1
  advertisedPort: %s
`, ziPort, advPort), "--proxy-type", "ingress", "--dataplane-token-file", "")
	eventually(t, 5*time.Second, "the ingress's availableServices", func() error {
		return availableBackend(cp, 1)
	})

	// zone-1: the frontend.
	toSvc := freePort(t)
	startDP(t, cp, "frontend-1", fmt.Sprintf(`type: Dataplane
mesh: default
name: frontend-1
networking:
  address: 127.0.0.1
  inbound:
  - port: %d
    servicePort: %d
    tags: {kuma.io/service: frontend, kuma.io/zone: zone-1}
  outbound:
  - port: %d
    tags: {kuma.io/service: backend}
`, freePort(t), freePort(t), toSvc))

	c := newClient()
	const marker = "PLAINTEXT-MARKER-7f3a9c"
	url := fmt.Sprintf("http://127.0.0.1:%d/%s", toSvc, marker)
	eventually(t, 5*time.Second, "frontend (zone-1) → backend (zone-2) through the ingress", func() error {
		inst, err := get(c, url)
		if err == nil && inst != "backend-of-zone-2" {
			err = fmt.Errorf("answered by %s", inst)
		}
		return err
	})
	for range 5 {
		if inst, err := get(c, url); err != nil || inst != "backend-of-zone-2" {
			t.Fatalf("cross-zone request: %q %v", inst, err)
		}
	}
	for _, tap := range []*tap{toIngress, toBackend} {
		up, down, conns := tap.seen()
		if conns == 0 || len(up) == 0 || len(down) == 0 {
			t.Fatalf("tap %s saw no traffic (%d connections): the request did not go through the ingress", tap.addr, conns)
		}
		if up[0] != 0x16 || up[1] != 0x03 {
			t.Fatalf("tap %s: the client's first bytes %x are not a TLS handshake", tap.addr, up[:min(len(up), 8)])
		}
		for _, secret := range []string{marker, "backend-of-zone-2", "GET /"} {
			if bytes.Contains(up, []byte(secret)) || bytes.Contains(down, []byte(secret)) {
				t.Fatalf("tap %s saw %q in clear: the ingress path is not end-to-end TLS", tap.addr, secret)
			}
		}
	}

	// A backend in zone-1 takes the traffic (local zone first) ...
	local := startHTTPApp(t, "backend-of-zone-1")
	localDP := startDP(t, cp, "backend-1", fmt.Sprintf(`type: Dataplane
mesh: default
name: backend-1
networking:
  address: 127.0.0.1
  inbound:
  - port: %d
    servicePort: %d
    tags: {kuma.io/service: backend, kuma.io/protocol: http, kuma.io/zone: zone-1}
`, freePort(t), local.port))
	eventually(t, 5*time.Second, "the zone-1 backend to take all traffic", func() error {
		for range 10 {
			inst, err := get(c, url)
			if err != nil {
				return err
			}
			if inst != "backend-of-zone-1" {
				return fmt.Errorf("answered by %s", inst)
			}
		}
		return nil
	})
	// ... and when it goes, traffic fails over to zone-2.
	localDP.Stop()
	eventually(t, 5*time.Second, "failover to zone-2", func() error {
		inst, err := get(c, url)
		if err == nil && inst != "backend-of-zone-2" {
			err = fmt.Errorf("answered by %s", inst)
		}
		return err
	})
	noNacks(t, cp)
}

// availableBackend checks that zone ingress zi-2 announces n instances
// of backend in mesh default.
func availableBackend(cp *controlPlane, n int) error {
	resp, err := http.Get(cp.URL + "/zoneingresses/zi-2")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var zi struct {
		AvailableServices []struct {
			Tags      map[string]string `json:"tags"`
			Instances int               `json:"instances"`
			Mesh      string            `json:"mesh"`
		} `json:"availableServices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&zi); err != nil {
		return err
	}
	for _, s := range zi.AvailableServices {
		if s.Tags["kuma.io/service"] == "backend" && s.Mesh == "default" && s.Instances == n {
			return nil
		}
	}
	return fmt.Errorf("availableServices %+v lack %d backend instance(s)", zi.AvailableServices, n)
}

// tap is a TCP relay that records what passes each way.
type tap struct {
	addr     string
	mu       sync.Mutex
	up, down bytes.Buffer
	conns    int
}

// startTap relays connections to listen to target.
func startTap(t *testing.T, listen, target string) *tap {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("tap on %s: %v", listen, err)
	}
	tp := &tap{addr: listen}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			tp.mu.Lock()
			tp.conns++
			tp.mu.Unlock()
			go tp.copy(out, in, &tp.up)
			go tp.copy(in, out, &tp.down)
		}
	}()
	return tp
}

func (tp *tap) copy(dst, src net.Conn, rec *bytes.Buffer) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			tp.mu.Lock()
			rec.Write(buf[:n])
			tp.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

// seen returns copies of what went each way and the connection count.
func (tp *tap) seen() (up, down []byte, conns int) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return bytes.Clone(tp.up.Bytes()), bytes.Clone(tp.down.Bytes()), tp.conns
}

// With routing.zoneEgress on, the frontend of zone-1 reaches zone-2
// through zone-1's ZoneEgress and zone-2's ingress; the egress, too, only
// relays TLS (a tap in front of it never sees the plaintext).
func TestZoneEgressCrossZone(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory", "TRELLIS_DP_SERVER_AUTHN": "none"})
	cp.mustCtl(mtlsMesh("STRICT", "24h")+"routing:\n  zoneEgress: true\n", "apply", "-f", "-")
	cp.mustCtl(allowAll, "apply", "-f", "-")

	remote := startHTTPApp(t, "backend-of-zone-2")
	startDP(t, cp, "backend-2", fmt.Sprintf(`type: Dataplane
mesh: default
name: backend-2
networking:
  address: 127.0.0.1
  inbound:
  - port: %d
    servicePort: %d
    tags: {kuma.io/service: backend, kuma.io/protocol: http, kuma.io/zone: zone-2}
`, freePort(t), remote.port))
	ziPort := freePort(t)
	startDP(t, cp, "zi-2", fmt.Sprintf(`type: ZoneIngress
name: zi-2
zone: zone-2
networking:
  address: 127.0.0.1
  port: %d
  advertisedAddress: 127.0.0.1
  advertisedPort: %d
`, ziPort, ziPort), "--proxy-type", "ingress", "--dataplane-token-file", "")
	eventually(t, 5*time.Second, "the ingress's availableServices", func() error {
		return availableBackend(cp, 1)
	})

	// zone-1's egress.
	zePort := freePort(t)
	egress := startDP(t, cp, "ze-1", fmt.Sprintf(`type: ZoneEgress
name: ze-1
zone: zone-1
networking:
  address: 127.0.0.1
  port: %d
`, zePort), "--proxy-type", "egress", "--dataplane-token-file", "")

	toSvc := freePort(t)
	startDP(t, cp, "frontend-1", fmt.Sprintf(`type: Dataplane
mesh: default
name: frontend-1
networking:
  address: 127.0.0.1
  inbound:
  - port: %d
    servicePort: %d
    tags: {kuma.io/service: frontend, kuma.io/zone: zone-1}
  outbound:
  - port: %d
    tags: {kuma.io/service: backend}
`, freePort(t), freePort(t), toSvc))

	c := newClient()
	url := fmt.Sprintf("http://127.0.0.1:%d/egress-marker", toSvc)
	eventually(t, 5*time.Second, "frontend (zone-1) → egress → ingress → backend (zone-2)", func() error {
		inst, err := get(c, url)
		if err == nil && inst != "backend-of-zone-2" {
			err = fmt.Errorf("answered by %s", inst)
		}
		return err
	})
	// The egress relayed it: its cluster to backend has connections; and
	// without the egress, zone-2 is out of reach (the frontend has no
	// direct path to the ingress).
	eventually(t, 5*time.Second, "the egress's backend cluster to have connections", func() error {
		resp, err := http.Get("http://" + egress.admin + "/stats")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !regexp.MustCompile(`cluster\.default.backend\.upstream_cx_total: [1-9]`).Match(body) {
			return fmt.Errorf("no upstream connection in the egress's stats")
		}
		return nil
	})
	noNacks(t, cp)
	egress.Stop()
	eventually(t, 5*time.Second, "zone-2 to be out of reach without the egress", func() error {
		if inst, err := get(newClient(), url); err == nil {
			return fmt.Errorf("still answered by %s", inst)
		}
		return nil
	})
}
