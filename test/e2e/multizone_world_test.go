package e2e

// The multi-zone world of TestMultiZone: a global control plane, two zone
// control planes (SQLite each, their own data dirs), a zone ingress per
// zone (zone-2's behind a recording TCP relay), all real processes on
// loopback.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// mzMesh is the mesh TestMultiZone creates on the global control plane.
const mzMesh = "mz"

// mzMissing names the multi-zone pieces the built binaries lack: the modes
// (trellis-cp's TRELLIS_MODE), zone tokens (trellisctl generate
// zone-token) and zone proxies (trellis-dp run --proxy-type).
func mzMissing(t *testing.T) []string {
	t.Helper()
	var missing []string
	probe := func(what, want string, bin string, args ...string) {
		out, _ := exec.Command(filepath.Join(binDir, bin), args...).CombinedOutput()
		if !strings.Contains(string(out), want) {
			missing = append(missing, what)
		}
	}
	probe("the global and zone modes (trellis-cp: TRELLIS_MODE)", "TRELLIS_MODE", "trellis-cp", "config", "defaults")
	probe("zone tokens (trellisctl generate zone-token)", "zone-token", "trellisctl", "generate", "--help")
	probe("zone ingresses (trellis-dp run --proxy-type ingress)", "--proxy-type", "trellis-dp", "run", "--help")
	return missing
}

// mzWorld is the running multi-zone deployment.
type mzWorld struct {
	t       *testing.T
	global  *controlPlane
	kdsAddr string
	zones   map[string]*controlPlane
	ingress map[string]*proxy
	// relay sits between other zones and zone-2's ingress and keeps the
	// bytes they send it.
	relay *tapRelay
}

// startGlobal runs the global control plane (SQLite) with its KDS server
// on a free port.
func (w *mzWorld) startGlobal() {
	w.kdsAddr = freeAddr(w.t)
	w.global = startCP(w.t, map[string]string{
		"TRELLIS_MODE":       "global",
		"TRELLIS_KDS_ADDR":   w.kdsAddr,
		"TRELLIS_STORE_TYPE": "sqlite",
	})
}

// startZone runs the zone control plane of zone (SQLite, its own data dir)
// with a zone token the global issued.
func (w *mzWorld) startZone(zone string) {
	t := w.t
	token := strings.TrimSpace(w.global.mustCtl("", "generate", "zone-token", "--zone", zone, "--scope", "cp", "--valid-for", "24h"))
	tokenFile := filepath.Join(t.TempDir(), zone+".token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	w.zones[zone] = startCP(t, map[string]string{
		"TRELLIS_MODE":                          "zone",
		"TRELLIS_MULTIZONE_ZONE":                zone,
		"TRELLIS_MULTIZONE_GLOBAL_ADDRESS":      "grpcs://" + w.kdsAddr,
		"TRELLIS_MULTIZONE_GLOBAL_CA_CERT_FILE": filepath.Join(w.global.DataDir, "certs", "kds-server.crt"),
		"TRELLIS_MULTIZONE_ZONE_TOKEN_FILE":     tokenFile,
		"TRELLIS_STORE_TYPE":                    "sqlite",
		// The zones' DP servers require tokens (the default): sidecars
		// present dataplane tokens, ingresses zone tokens (startIngress).
	})
}

// startIngress runs zone's ingress with a zone token (scope ingress). advertisedPort, when not zero, is what
// other zones are told to dial instead of the listener's own port.
func (w *mzWorld) startIngress(zone string, port, advertisedPort int) {
	if advertisedPort == 0 {
		advertisedPort = port
	}
	name := zone + "-ingress"
	doc := fmt.Sprintf(`type: ZoneIngress
name: %s
networking:
  address: 127.0.0.1
  port: %d
  advertisedAddress: 127.0.0.1
  advertisedPort: %d
`, name, port, advertisedPort)
	// The ingress proves its identity with a zone token the global issued
	// (scope ingress, this zone); the zone verifies it with the public key
	// the global synced to it.
	token := w.global.mustCtl("", "generate", "zone-token", "--zone", zone, "--scope", "ingress", "--valid-for", "1h")
	p := launchDP(w.t, w.zones[zone], name, doc, "--proxy-type", "ingress", "--dataplane-token-file", writeToken(w.t, strings.TrimSpace(token)))
	waitReady(w.t, p, 30*time.Second)
	w.ingress[zone] = p
}

// waitReady waits for a proxy's admin /ready.
func waitReady(t *testing.T, p *proxy, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.admin + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("trellis-dp %s exited; its log:\n%s", p.name, p.log)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("trellis-dp %s not ready within %s; its log:\n%s", p.name, timeout, p.log)
}

// mzDataplane is a Dataplane of mesh mz: one inbound for service (its app
// on appPort) and outbounds port → service.
func mzDataplane(t *testing.T, name, service string, appPort int, outbounds map[int]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "type: Dataplane\nmesh: %s\nname: %s\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - port: %d\n    servicePort: %d\n    tags:\n      kuma.io/service: %s\n      kuma.io/protocol: http\n",
		mzMesh, name, freePort(t), appPort, service)
	if len(outbounds) > 0 {
		b.WriteString("  outbound:\n")
		for port, svc := range outbounds {
			fmt.Fprintf(&b, "  - port: %d\n    tags:\n      kuma.io/service: %s\n", port, svc)
		}
	}
	return b.String()
}

// apiJSON GETs url and decodes its JSON into v; it returns an error for
// any status but 200.
func apiJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return json.Unmarshal(body, v)
}

// mzItem is a resource of a list, with the labels KDS sets.
type mzItem struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
}

// displayName is the name the resource has where it was created.
func (i mzItem) displayName() string {
	if n := i.Labels["kuma.io/display-name"]; n != "" {
		return n
	}
	return i.Name
}

func listItems(url string) ([]mzItem, error) {
	var page struct {
		Items []mzItem `json:"items"`
	}
	err := apiJSON(url+"?size=1000", &page)
	return page.Items, err
}

// zonesOnline checks that the global lists exactly these zones, online.
func (w *mzWorld) zonesOnline(zones ...string) error {
	var page struct {
		Total int `json:"total"`
		Items []struct {
			Name        string `json:"name"`
			ZoneInsight struct {
				Subscriptions []struct {
					DisconnectTime *string `json:"disconnectTime"`
				} `json:"subscriptions"`
			} `json:"zoneInsight"`
		} `json:"items"`
	}
	if err := apiJSON(w.global.URL+"/zones+insights", &page); err != nil {
		return err
	}
	online := map[string]bool{}
	for _, z := range page.Items {
		subs := z.ZoneInsight.Subscriptions
		online[z.Name] = len(subs) > 0 && subs[len(subs)-1].DisconnectTime == nil
	}
	for _, z := range zones {
		if !online[z] {
			return fmt.Errorf("zone %s is not online at the global: %+v", z, page)
		}
	}
	if page.Total != len(zones) {
		return fmt.Errorf("the global lists %d zones, want %d: %+v", page.Total, len(zones), page)
	}
	return nil
}

// tapRelay forwards TCP connections to target and keeps (up to a cap)
// the bytes clients send.
type tapRelay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	sent   bytes.Buffer
	conns  int
	// firstBytes are the first byte of every connection.
	firstBytes []byte
}

const tapCap = 4 << 20

func startTapRelay(t *testing.T, target string) *tapRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &tapRelay{ln: ln, target: target}
	go r.serve()
	t.Cleanup(func() { ln.Close() })
	return r
}

func (r *tapRelay) port() int { return r.ln.Addr().(*net.TCPAddr).Port }

func (r *tapRelay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		go r.relay(c)
	}
}

func (r *tapRelay) relay(c net.Conn) {
	defer c.Close()
	up, err := net.DialTimeout("tcp", r.target, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	r.mu.Lock()
	r.conns++
	r.mu.Unlock()
	go func() {
		_, _ = io.Copy(c, up)
		c.Close()
	}()
	buf := make([]byte, 32<<10)
	first := true
	for {
		n, err := c.Read(buf)
		if n > 0 {
			r.mu.Lock()
			if first {
				r.firstBytes = append(r.firstBytes, buf[0])
				first = false
			}
			if r.sent.Len() < tapCap {
				r.sent.Write(buf[:n])
			}
			r.mu.Unlock()
			if _, werr := up.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if tcp, ok := up.(*net.TCPConn); ok {
				_ = tcp.CloseWrite()
			}
			return
		}
	}
}

// seen returns a copy of the bytes sent through the relay, the number of
// connections and their first bytes.
func (r *tapRelay) seen() ([]byte, int, []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.sent.Bytes()), r.conns, bytes.Clone(r.firstBytes)
}
