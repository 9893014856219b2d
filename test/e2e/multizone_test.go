package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestMultiZone is issue 9's acceptance, with real processes on loopback:
// a global control plane and two zone control planes (SQLite each), a zone
// ingress per zone, a mesh with mTLS and an allow-all MeshTrafficPermission
// created on the global. A frontend (the test, calling its sidecar) in
// zone-1 calls a backend that runs only in zone-2:
//
//   - the traffic crosses zones through zone-2's ingress with mTLS end to
//     end: a relay in front of the ingress sees TLS records and never the
//     request's plaintext marker, and the ingress's listeners hold no TLS
//     termination (it routes by SNI);
//   - a policy applied on the global reaches the zone proxy within 2 s;
//   - a zone refuses writes of a global-owned policy kind (405);
//   - with the global stopped, cross-zone traffic keeps flowing and a new
//     backend instance in zone-2 serves both zones; a Dataplane deleted in
//     zone-2 meanwhile is gone from the global once it is back;
//   - the global back: both zones reconnect and the global lists every
//     dataplane of both zones exactly once; its GUI shows the zones.
func TestMultiZone(t *testing.T) {
	if missing := mzMissing(t); len(missing) > 0 {
		msg := "SKIPPING the multi-zone end-to-end test: the built binaries lack " + strings.Join(missing, "; ")
		if os.Getenv("TRELLIS_TEST_STRICT") == "1" {
			t.Fatal(msg + " and TRELLIS_TEST_STRICT=1")
		}
		t.Skip(msg)
	}
	w := &mzWorld{t: t, zones: map[string]*controlPlane{}, ingress: map[string]*proxy{}}
	w.startGlobal()
	w.startZone("zone-1")
	w.startZone("zone-2")
	eventually(t, 30*time.Second, "both zones connect to the global", func() error { return w.zonesOnline("zone-1", "zone-2") })

	w.global.mustCtl(fmt.Sprintf(`type: Mesh
name: %s
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
`, mzMesh), "apply", "-f", "-")
	w.global.mustCtl(fmt.Sprintf(`type: MeshTrafficPermission
mesh: %s
name: allow-all
spec:
  targetRef:
    kind: Mesh
  from:
  - targetRef:
      kind: Mesh
    default:
      action: Allow
`, mzMesh), "apply", "-f", "-")
	for zone, cp := range w.zones {
		eventually(t, 20*time.Second, "the mesh and the traffic permission reach "+zone, func() error {
			var m map[string]any
			if err := apiJSON(cp.URL+"/meshes/"+mzMesh, &m); err != nil {
				return err
			}
			items, err := listItems(cp.URL + "/meshes/" + mzMesh + "/meshtrafficpermissions")
			if err != nil {
				return err
			}
			for _, it := range items {
				if it.displayName() == "allow-all" {
					return nil
				}
			}
			return fmt.Errorf("no allow-all MeshTrafficPermission in %s: %+v", zone, items)
		})
	}

	// Zone ingresses; zone-2's is advertised at a relay that keeps what
	// zone-1 sends it.
	ingress2Port := freePort(t)
	w.relay = startTapRelay(t, fmt.Sprintf("127.0.0.1:%d", ingress2Port))
	w.startIngress("zone-1", freePort(t), 0)
	w.startIngress("zone-2", ingress2Port, w.relay.port())

	backend1 := startTestApp(t, "backend-1")
	backendDP := startDP(t, w.zones["zone-2"], "backend-1", mzDataplane(t, "backend-1", "backend", backend1.port, nil))
	frontendApp := startTestApp(t, "frontend-1")
	outPort := freePort(t)
	frontend := startDP(t, w.zones["zone-1"], "frontend-1", mzDataplane(t, "frontend-1", "frontend", frontendApp.port, map[int]string{outPort: "backend"}))
	backendURL := fmt.Sprintf("http://127.0.0.1:%d", outPort)
	client := &http.Client{Timeout: 10 * time.Second}

	t.Run("cross-zone mTLS through the ingress", func(t *testing.T) {
		mzCrossZone(t, w, client, backendURL, backendDP)
	})
	t.Run("a global policy reaches the zone proxy within 2 s", func(t *testing.T) {
		mzPolicyPropagation(t, w, frontend)
	})
	t.Run("a zone refuses global-owned kinds", func(t *testing.T) {
		mzZoneWriteRefused(t, w)
	})
	t.Run("the global stopped, then back", func(t *testing.T) {
		mzGlobalOutage(t, w, client, backendURL)
	})
	t.Run("GUI of the global", func(t *testing.T) {
		mzGUI(t, w)
	})
}

// mzCrossZone: zone-1's frontend reaches zone-2's backend through zone-2's
// ingress, which never sees plaintext.
func mzCrossZone(t *testing.T, w *mzWorld, client *http.Client, backendURL string, backendDP *proxy) {
	eventually(t, 60*time.Second, "zone-1's frontend reaches zone-2's backend", func() error {
		a, err := request(client, http.MethodGet, backendURL+"/warmup")
		if err != nil {
			return err
		}
		if a.status != http.StatusOK || a.instance != "backend-1" {
			return fmt.Errorf("status %d from %q: %s", a.status, a.instance, a.body)
		}
		return nil
	})
	marker := fmt.Sprintf("plaintext-marker-%d", time.Now().UnixNano())
	for i := range 10 {
		a, err := request(client, http.MethodGet, backendURL+"/"+marker, "X-Marker", marker)
		if err != nil || a.status != http.StatusOK || a.instance != "backend-1" {
			t.Fatalf("request %d across zones: %v, status %d from %q: %s", i, err, a.status, a.instance, a.body)
		}
		if !strings.Contains(a.body, marker) {
			t.Fatalf("the backend did not see the request's path: %s", a.body)
		}
	}
	sent, conns, first := w.relay.seen()
	if conns == 0 || len(sent) == 0 {
		t.Fatalf("no connection went through zone-2's advertised ingress address (relay saw %d connections): the cross-zone endpoint is not the ingress's advertised address", conns)
	}
	if bytes.Contains(sent, []byte(marker)) {
		t.Errorf("the bytes sent to zone-2's ingress contain the plaintext marker %q: the traffic is not encrypted end to end", marker)
	}
	for i, b := range first {
		if b != 0x16 {
			t.Errorf("connection %d to the ingress starts with byte %#x, not a TLS handshake record (0x16)", i, b)
		}
	}
	// The ingress cannot decrypt: none of its listeners terminates TLS,
	// while the backend's sidecar does (it holds the mesh certificate).
	ingressDump := adminGet(t, w.ingress["zone-2"], "/config_dump")
	if strings.Contains(ingressDump, "DownstreamTlsContext") {
		t.Errorf("zone-2's ingress terminates TLS (its config has a DownstreamTlsContext):\n%s", ingressDump)
	}
	for _, secret := range []string{"private_key", "tls_certificate"} {
		if strings.Contains(ingressDump, secret) {
			t.Errorf("zone-2's ingress holds a certificate or key (%s in its config): it could decrypt the traffic", secret)
		}
	}
	if !strings.Contains(ingressDump, "server_names") {
		t.Errorf("zone-2's ingress does not route by SNI (no filter chain matches server_names):\n%s", ingressDump)
	}
	if dump := adminGet(t, backendDP, "/config_dump"); !strings.Contains(dump, "DownstreamTlsContext") || !strings.Contains(dump, "private_key") {
		t.Errorf("the backend's sidecar does not terminate mTLS on its inbound with its own certificate and key:\n%s", dump)
	}
}

// mzPolicyPropagation applies a MeshTimeout on the global and waits for
// its connect timeout in the zone-1 frontend's config.
func mzPolicyPropagation(t *testing.T, w *mzWorld, frontend *proxy) {
	const want = `"3.333s"`
	if strings.Contains(adminGet(t, frontend, "/config_dump"), want) {
		t.Fatalf("the frontend's config already has %s", want)
	}
	body := fmt.Sprintf(`{"type":"MeshTimeout","mesh":%q,"name":"aaa-global-timeout","spec":{"targetRef":{"kind":"Mesh"},"to":[{"targetRef":{"kind":"Mesh"},"default":{"connectionTimeout":"3333ms"}}]}}`, mzMesh)
	status, text := httpDo(t, http.MethodPut, w.global.URL+"/meshes/"+mzMesh+"/meshtimeouts/aaa-global-timeout", body)
	if status != http.StatusCreated {
		t.Fatalf("PUT the MeshTimeout on the global: %d %s", status, text)
	}
	start := time.Now()
	for !strings.Contains(adminGet(t, frontend, "/config_dump"), want) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the global's MeshTimeout (connect timeout 3.333s) did not reach zone-1's frontend within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("the global's policy reached zone-1's proxy %s after the PUT answered", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("the global's policy took %s to reach zone-1's proxy, more than the 2 s issue 9 asks", took)
	}
}

// mzZoneWriteRefused: a zone answers 405 to a write of a policy, which
// the global owns.
func mzZoneWriteRefused(t *testing.T, w *mzWorld) {
	zone := w.zones["zone-1"]
	body := fmt.Sprintf(`{"type":"MeshTimeout","mesh":%q,"name":"zone-local","spec":{"targetRef":{"kind":"Mesh"},"to":[{"targetRef":{"kind":"Mesh"},"default":{"connectionTimeout":"2s"}}]}}`, mzMesh)
	status, text := httpDo(t, http.MethodPut, zone.URL+"/meshes/"+mzMesh+"/meshtimeouts/zone-local", body)
	if status != http.StatusMethodNotAllowed {
		t.Errorf("PUT a MeshTimeout on zone-1: %d %s, want 405", status, text)
	}
	if _, err := listItems(zone.URL + "/meshes/" + mzMesh + "/meshtimeouts/zone-local"); err == nil {
		t.Errorf("zone-1 stored the MeshTimeout it refused")
	}
	// Deleting a synced copy is refused too.
	items, err := listItems(zone.URL + "/meshes/" + mzMesh + "/meshtrafficpermissions")
	if err != nil || len(items) == 0 {
		t.Fatalf("zone-1's traffic permissions: %v %v", items, err)
	}
	status, text = httpDo(t, http.MethodDelete, zone.URL+"/meshes/"+mzMesh+"/meshtrafficpermissions/"+items[0].Name, "")
	if status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE the synced traffic permission %s on zone-1: %d %s, want 405", items[0].Name, status, text)
	}
}

// mzGlobalOutage stops the global: traffic and zone-local changes go on;
// then starts it again and checks that everything converges.
func mzGlobalOutage(t *testing.T, w *mzWorld, client *http.Client, backendURL string) {
	zone2 := w.zones["zone-2"]
	// A Dataplane that zone-2 will delete while the global is away.
	zone2.mustCtl(fmt.Sprintf("type: Dataplane\nmesh: %s\nname: doomed-1\nnetworking:\n  address: 127.0.0.1\n  inbound:\n  - port: %d\n    tags:\n      kuma.io/service: doomed\n", mzMesh, freePort(t)), "apply", "-f", "-")
	eventually(t, 20*time.Second, "zone-2's doomed-1 reaches the global", func() error {
		return w.globalDataplanes(map[string]int{"zone-1/frontend-1": 1, "zone-2/backend-1": 1, "zone-2/doomed-1": 1})
	})

	w.global.Stop()
	for i := range 20 {
		a, err := request(client, http.MethodGet, backendURL+"/during-outage")
		if err != nil || a.status != http.StatusOK {
			t.Fatalf("request %d across zones with the global stopped: %v, status %d: %s", i, err, a.status, a.body)
		}
	}

	// Zone-local changes in zone-2: a second backend instance, a client
	// of the backend, and the delete of doomed-1.
	backend2 := startTestApp(t, "backend-2")
	startDP(t, zone2, "backend-2", mzDataplane(t, "backend-2", "backend", backend2.port, nil))
	client2App := startTestApp(t, "client-2")
	out2 := freePort(t)
	startDP(t, zone2, "client-2", mzDataplane(t, "client-2", "client", client2App.port, map[int]string{out2: "backend"}))
	if status, text := httpDo(t, http.MethodDelete, zone2.URL+"/meshes/"+mzMesh+"/dataplanes/doomed-1", ""); status != http.StatusOK {
		t.Fatalf("DELETE doomed-1 on zone-2 with the global stopped: %d %s", status, text)
	}
	local := fmt.Sprintf("http://127.0.0.1:%d", out2)
	eventually(t, 30*time.Second, "zone-2's client reaches both backend instances with the global stopped", func() error {
		seen, err := count(client, local+"/local", 20, 4)
		if err != nil {
			return err
		}
		if seen["backend-1"] == 0 || seen["backend-2"] == 0 {
			return fmt.Errorf("answers by instance: %v", seen)
		}
		return nil
	})
	eventually(t, 30*time.Second, "zone-1's frontend reaches the new backend-2 through zone-2's ingress with the global stopped", func() error {
		seen, err := count(client, backendURL+"/new-instance", 20, 4)
		if err != nil {
			return err
		}
		if seen["backend-2"] == 0 {
			return fmt.Errorf("answers by instance: %v", seen)
		}
		return nil
	})

	w.global.start()
	eventually(t, 60*time.Second, "both zones reconnect to the restarted global", func() error { return w.zonesOnline("zone-1", "zone-2") })
	want := map[string]int{"zone-1/frontend-1": 1, "zone-2/backend-1": 1, "zone-2/backend-2": 1, "zone-2/client-2": 1}
	eventually(t, 60*time.Second, "the global lists every dataplane of both zones exactly once", func() error {
		return w.globalDataplanes(want)
	})
	eventually(t, 30*time.Second, "the global lists both zone ingresses", func() error {
		items, err := listItems(w.global.URL + "/zoneingresses")
		if err != nil {
			return err
		}
		if len(items) != 2 {
			return fmt.Errorf("zone ingresses at the global: %+v", items)
		}
		return nil
	})
	var g struct {
		Zones struct {
			ControlPlanes struct{ Online, Total int } `json:"controlPlanes"`
		} `json:"zones"`
	}
	if err := apiJSON(w.global.URL+"/global-insight", &g); err != nil || g.Zones.ControlPlanes.Online != 2 || g.Zones.ControlPlanes.Total != 2 {
		t.Errorf("global-insight zones.controlPlanes = %+v (%v), want 2 online of 2", g.Zones.ControlPlanes, err)
	}
	for i := range 10 {
		a, err := request(client, http.MethodGet, backendURL+"/after-outage")
		if err != nil || a.status != http.StatusOK {
			t.Fatalf("request %d across zones after the global came back: %v, status %d: %s", i, err, a.status, a.body)
		}
	}
}

// globalDataplanes checks the global's dataplanes of mesh mz: want counts
// "zone/name" (name as the zone knows it); nothing else may be listed.
func (w *mzWorld) globalDataplanes(want map[string]int) error {
	items, err := listItems(w.global.URL + "/meshes/" + mzMesh + "/dataplanes")
	if err != nil {
		return err
	}
	got := map[string]int{}
	for _, it := range items {
		got[it.Labels["kuma.io/zone"]+"/"+it.displayName()]++
	}
	if len(got) != len(want) || len(items) != len(want) {
		return fmt.Errorf("the global lists %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			return fmt.Errorf("the global lists %v, want %v", got, want)
		}
	}
	return nil
}

// mzGUI opens the global's GUI on the Zones page and a zone's page.
func mzGUI(t *testing.T, w *mzWorld) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skip("SKIPPING the GUI part: chromium is not installed at " + chromiumPath)
	}
	b := startBrowser(t, findChromium(t))
	b.do("opening the global's GUI", 30*time.Second, chromedp.Navigate(w.global.URL+"/gui/#/zones"))
	b.waitFor("both zones online", `[...document.querySelectorAll('main tbody tr')].filter((tr) => tr.innerText.includes('Online')).length === 2 && `+mainHas("zone-1", "zone-2"), 20*time.Second)
	if !eval[bool](b, `[...document.querySelectorAll('#nav a')].some((a) => a.textContent === 'Zones')`) {
		t.Error("the global's navigation has no Zones item")
	}
	b.screenshot("zones-03-global-zones")
	b.route("#/")
	b.waitFor("the overview's zone count", `[...document.querySelectorAll('main a[href="#/zones"]')].some((a) => a.textContent === '2 online · 0 offline')`, 20*time.Second)
	b.route("#/zones/zone-2")
	b.waitFor("zone-2's page with its dataplanes and ingress", mainHas("zone-2", "KDS connection", "backend-1", "backend-2", "zone-2-ingress"), 20*time.Second)
	b.screenshot("zones-04-global-zone")
	// A zone control plane's GUI names its zone and points to the global.
	b.do("opening zone-1's GUI", 30*time.Second, chromedp.Navigate(w.zones["zone-1"].URL+"/gui/#/zones"))
	b.waitFor("zone-1's note", mainHas("zone control plane of", "zone-1", "global control plane"), 20*time.Second)
	if got := eval[string](b, `document.getElementById('version').textContent`); !strings.Contains(got, "zone zone-1") {
		t.Errorf("zone-1's GUI footer reads %q, want the mode and zone", got)
	}
	for _, p := range b.problems() {
		t.Errorf("browser console: %s", p)
	}
}

// httpDo sends a request with a JSON body and returns the status and body.
func httpDo(t *testing.T, method, url, body string) (int, string) {
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
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
