package e2e

// KDS with real processes: a global and a zone control plane (SQLite
// each) syncing over TLS; the zone keeps working while the global is down.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kdsCall sends one API request and returns the status and body.
func kdsCall(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// kdsWait polls check every 25 ms until it returns nil or within passes.
func kdsWait(t *testing.T, within time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := check()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// kdsItem reads one resource; ok is false on 404.
func kdsItem(t *testing.T, url string) (map[string]any, bool, error) {
	code, body := kdsCall(t, http.MethodGet, url, "")
	if code == http.StatusNotFound {
		return nil, false, nil
	}
	if code != http.StatusOK {
		return nil, false, fmt.Errorf("GET %s: %d %s", url, code, body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return nil, false, err
	}
	return m, true, nil
}

func labelsOfItem(m map[string]any) map[string]any {
	l, _ := m["labels"].(map[string]any)
	return l
}

func TestKDSGlobalAndZone(t *testing.T) {
	kdsAddr := freeAddr(t)
	global := startCP(t, map[string]string{
		"TRELLIS_MODE": "global", "TRELLIS_KDS_ADDR": kdsAddr, "TRELLIS_STORE_TYPE": "sqlite",
	})
	token := strings.TrimSpace(global.mustCtl("", "generate", "zone-token", "--zone", "zone-1", "--valid-for", "1h"))
	tokenFile := filepath.Join(t.TempDir(), "zone-1.token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	zone := startCP(t, map[string]string{
		"TRELLIS_MODE":                          "zone",
		"TRELLIS_MULTIZONE_ZONE":                "zone-1",
		"TRELLIS_MULTIZONE_GLOBAL_ADDRESS":      "grpcs://" + kdsAddr,
		"TRELLIS_MULTIZONE_GLOBAL_CA_CERT_FILE": filepath.Join(global.DataDir, "certs", "kds-server.crt"),
		"TRELLIS_MULTIZONE_ZONE_TOKEN_FILE":     tokenFile,
		"TRELLIS_STORE_TYPE":                    "sqlite",
	})

	// The global records the zone once it connects.
	kdsWait(t, 10*time.Second, "Zone zone-1 at the global", func() error {
		_, ok, err := kdsItem(t, global.URL+"/zones/zone-1")
		if err == nil && !ok {
			err = fmt.Errorf("no Zone zone-1 yet")
		}
		return err
	})

	// A Mesh and a MeshTimeout applied on the global reach the zone within 2 s.
	applyYAML(t, global, "type: Mesh\nname: kds\n")
	applyYAML(t, global, `type: MeshTimeout
name: slow
mesh: kds
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: Mesh
    default:
      connectionTimeout: 7s
`)
	took := kdsWait(t, 2*time.Second, "the MeshTimeout in the zone", func() error {
		code, body := kdsCall(t, http.MethodGet, zone.URL+"/meshes/kds/meshtimeouts?filter[labels.kuma.io/display-name]=slow", "")
		if code != http.StatusOK || !strings.Contains(body, `"total":1`) || !strings.Contains(body, "7s") {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	t.Logf("the MeshTimeout reached the zone in %s", took.Round(time.Millisecond))

	// A Dataplane registered in the zone appears at the global with labels.
	dp := `{"type":"Dataplane","mesh":"kds","name":"web-1","networking":{"address":"127.0.0.1","inbound":[{"port":20001,"servicePort":8080,"tags":{"kuma.io/service":"web"}}]}}`
	if code, body := kdsCall(t, http.MethodPut, zone.URL+"/meshes/kds/dataplanes/web-1", dp); code != http.StatusCreated {
		t.Fatalf("PUT the zone's Dataplane: %d %s", code, body)
	}
	kdsWait(t, 5*time.Second, "the Dataplane at the global", func() error {
		m, ok, err := kdsItem(t, global.URL+"/meshes/kds/dataplanes/zone-1.web-1")
		if err != nil || !ok {
			return fmt.Errorf("not there (%v)", err)
		}
		l := labelsOfItem(m)
		if l["kuma.io/origin"] != "zone" || l["kuma.io/zone"] != "zone-1" || l["kuma.io/display-name"] != "web-1" {
			return fmt.Errorf("labels %v", l)
		}
		return nil
	})

	// Each side refuses writes to the kinds the other owns.
	code, body := kdsCall(t, http.MethodPut, zone.URL+"/meshes/kds/meshtimeouts/local", `{"type":"MeshTimeout","mesh":"kds","name":"local","spec":{"targetRef":{"kind":"Mesh"}}}`)
	if code != http.StatusMethodNotAllowed || !strings.Contains(body, "Global CP") {
		t.Errorf("a zone PUT of a MeshTimeout: %d %s, want 405", code, body)
	}
	code, body = kdsCall(t, http.MethodPut, global.URL+"/meshes/kds/dataplanes/g-1", strings.Replace(dp, "web-1", "g-1", 1))
	if code != http.StatusMethodNotAllowed {
		t.Errorf("a global PUT of a Dataplane: %d %s, want 405", code, body)
	}

	// The global is killed: the zone still answers and takes its own writes.
	_ = global.cmd.Process.Kill()
	_ = global.cmd.Wait()
	global.stopped = true
	if _, ok, err := kdsItem(t, zone.URL+"/meshes/kds"); err != nil || !ok {
		t.Fatalf("the zone lost mesh kds without the global: %v", err)
	}
	dp2 := strings.Replace(dp, "web-1", "web-2", 1)
	if code, body := kdsCall(t, http.MethodPut, zone.URL+"/meshes/kds/dataplanes/web-2", dp2); code != http.StatusCreated {
		t.Fatalf("PUT a Dataplane while the global is down: %d %s", code, body)
	}
	if code, body := kdsCall(t, http.MethodDelete, zone.URL+"/meshes/kds/dataplanes/web-1", ""); code != http.StatusOK {
		t.Fatalf("DELETE a Dataplane while the global is down: %d %s", code, body)
	}

	// The global comes back (same data dir, same KDS port): both converge.
	global.start()
	applyYAML(t, global, `type: MeshTimeout
name: slow
mesh: kds
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: Mesh
    default:
      connectionTimeout: 9s
`)
	kdsWait(t, 15*time.Second, "the zone's dataplanes at the restarted global", func() error {
		code, body := kdsCall(t, http.MethodGet, global.URL+"/meshes/kds/dataplanes", "")
		if code != http.StatusOK || !strings.Contains(body, `"total":1`) || !strings.Contains(body, "zone-1.web-2") {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	kdsWait(t, 15*time.Second, "the updated MeshTimeout in the zone", func() error {
		code, body := kdsCall(t, http.MethodGet, zone.URL+"/meshes/kds/meshtimeouts?filter[labels.kuma.io/display-name]=slow", "")
		if code != http.StatusOK || !strings.Contains(body, `"total":1`) || !strings.Contains(body, "9s") {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
}
