package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// cpObsGet fetches a control-plane URL and returns its status and body.
func cpObsGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// cpObsJSON fetches a control-plane URL that must answer 200 with JSON.
func cpObsJSON(t *testing.T, url string, v any) error {
	t.Helper()
	code, body := cpObsGet(t, url)
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		return fmt.Errorf("GET %s: %w: %s", url, err, body)
	}
	return nil
}

// cpObsPromtool runs `promtool check metrics` on text and returns its
// findings; without promtool it skips the test (fails it under
// TRELLIS_TEST_STRICT=1).
func cpObsPromtool(t *testing.T, text string) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		msg := "promtool is not installed (Debian: apt-get install prometheus)"
		if os.Getenv("TRELLIS_TEST_STRICT") == "1" {
			t.Fatal(msg + " and TRELLIS_TEST_STRICT=1")
		}
		t.Skip(msg)
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// The control plane observes itself and its mesh, as a user sees it: a
// frontend sidecar calls a backend sidecar under steady load; the CP's
// /metrics passes promtool and counts both proxies and their ACKs, the
// insight endpoints show both dataplanes and services online, and the
// service map (from the metrics the proxies stream to the CP) shows the
// frontend → backend edge with a rate.
func TestControlPlaneObservability(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory", "TRELLIS_DP_SERVER_STATS_FLUSH_INTERVAL": "1s"})
	app := startTestApp(t, "backend-1")
	startDP(t, cp, "backend-1", serviceDP(t, "backend-1", "backend", "http", app.port))
	out := freePort(t)
	frontend := fmt.Sprintf(`type: Dataplane
mesh: default
name: frontend-1
networking:
  address: 127.0.0.1
  inbound:
  - port: %d
    servicePort: %d
    tags:
      kuma.io/service: frontend
      kuma.io/protocol: http
  outbound:
  - port: %d
    tags:
      kuma.io/service: backend
`, freePort(t), freePort(t), out)
	startDP(t, cp, "frontend-1", frontend)

	// Steady traffic until the test ends, a few requests a second.
	c := newClient()
	eventually(t, 10*time.Second, "a request through the mesh", func() error {
		_, err := get(c, fmt.Sprintf("http://127.0.0.1:%d/", out))
		return err
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			_, _ = get(c, fmt.Sprintf("http://127.0.0.1:%d/", out))
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })

	t.Run("metrics", func(t *testing.T) {
		var text string
		eventually(t, 15*time.Second, "/metrics to count 2 proxies and their ACKs", func() error {
			code, body := cpObsGet(t, cp.URL+"/metrics")
			if code != http.StatusOK {
				return fmt.Errorf("/metrics: %d", code)
			}
			text = body
			if !strings.Contains(body, `trellis_cp_connected_proxies{mesh="default",xds_mode="sotw"} 2`) {
				return fmt.Errorf("connected proxies are not 2")
			}
			if !strings.Contains(body, `xds_requests_received_total{confirmation="ACK"`) {
				return fmt.Errorf("no ACK counted")
			}
			if !strings.Contains(body, "xds_delivery_count ") || !strings.Contains(body, "trellis_cp_dp_metrics_messages_total ") {
				return fmt.Errorf("no ACK latency or metrics messages")
			}
			return nil
		})
		for _, want := range []string{"xds_generation_bucket", "trellis_cp_xds_push_latency_seconds_bucket", `store_bucket{operation="get"`,
			`api_server_http_request_duration_seconds_bucket{code="200",handler="GET /ready"`, "process_resident_memory_bytes"} {
			if !strings.Contains(text, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		if out := cpObsPromtool(t, text); out != "" {
			t.Errorf("promtool check metrics on the CP's /metrics:\n%s", out)
		}
	})

	t.Run("insights", func(t *testing.T) {
		eventually(t, 10*time.Second, "the mesh insight to show 2 dataplanes online", func() error {
			var mi struct {
				Type       string
				Dataplanes struct{ Total, Online, Offline int }
				Services   struct{ Total, Internal int }
				Policies   map[string]struct{ Total int }
				DPVersions struct {
					KumaDp map[string]struct{ Online int }
				}
			}
			if err := cpObsJSON(t, cp.URL+"/mesh-insights/default", &mi); err != nil {
				return err
			}
			if mi.Type != "MeshInsight" || mi.Dataplanes.Total != 2 || mi.Dataplanes.Online != 2 || mi.Services.Internal != 2 {
				return fmt.Errorf("mesh insight %+v", mi)
			}
			if mi.Policies["MeshTimeout"].Total == 0 || len(mi.DPVersions.KumaDp) != 1 {
				return fmt.Errorf("policies %v, versions %v", mi.Policies, mi.DPVersions)
			}
			return nil
		})
		var list struct {
			Total int
			Items []struct{ Type, Name string }
		}
		if err := cpObsJSON(t, cp.URL+"/mesh-insights", &list); err != nil || list.Total != 1 || list.Items[0].Name != "default" {
			t.Errorf("/mesh-insights: %v %+v", err, list)
		}
		var services struct {
			Total int
			Items []struct {
				Name, Status string
				Dataplanes   struct{ Total, Online int }
			}
		}
		if err := cpObsJSON(t, cp.URL+"/meshes/default/service-insights", &services); err != nil {
			t.Fatal(err)
		}
		if services.Total != 2 || services.Items[0].Name != "backend" || services.Items[1].Name != "frontend" {
			t.Fatalf("service insights %+v", services)
		}
		for _, s := range services.Items {
			if s.Status != "online" || s.Dataplanes.Online != 1 {
				t.Errorf("service %s: %+v", s.Name, s)
			}
		}
		var one struct{ Type, Mesh, Name, Status string }
		if err := cpObsJSON(t, cp.URL+"/meshes/default/service-insights/backend", &one); err != nil || one.Type != "ServiceInsight" || one.Status != "online" {
			t.Errorf("backend's service insight: %v %+v", err, one)
		}
		if code, body := cpObsGet(t, cp.URL+"/meshes/default/service-insights/nope"); code != http.StatusNotFound || !strings.Contains(body, `\"nope\"`) {
			t.Errorf("an unknown service: %d %s", code, body)
		}
		var g struct {
			Type       string
			Meshes     struct{ Total int }
			Dataplanes struct{ Standard struct{ Total, Online int } }
			Services   struct{ Internal struct{ Total, Online int } }
			Policies   struct{ Total int }
		}
		if err := cpObsJSON(t, cp.URL+"/global-insight", &g); err != nil {
			t.Fatal(err)
		}
		if g.Type != "GlobalInsight" || g.Meshes.Total != 1 || g.Dataplanes.Standard.Online != 2 || g.Services.Internal.Online != 2 || g.Policies.Total == 0 {
			t.Errorf("global insight %+v", g)
		}
	})

	t.Run("mTLS", func(t *testing.T) {
		applyYAML(t, cp, allowAll)
		applyYAML(t, cp, mtlsMesh("STRICT", "1h"))
		eventually(t, 20*time.Second, "each dataplane's insight to show its certificate, and the mesh its backend", func() error {
			for _, name := range []string{"backend-1", "frontend-1"} {
				var ov struct {
					DataplaneInsight struct {
						MTLS struct {
							CertificateExpirationTime string
							IssuedBackend             string
							CertificateRegenerations  int
						} `json:"mTLS"`
					}
				}
				if err := cpObsJSON(t, cp.URL+"/meshes/default/dataplanes/"+name+"/_overview", &ov); err != nil {
					return err
				}
				m := ov.DataplaneInsight.MTLS
				exp, err := time.Parse(time.RFC3339, m.CertificateExpirationTime)
				if err != nil || m.IssuedBackend != "ca-1" || m.CertificateRegenerations < 1 || time.Until(exp) < 50*time.Minute {
					return fmt.Errorf("%s: mTLS insight %+v", name, m)
				}
			}
			var mi struct {
				MTLS struct {
					IssuedBackends map[string]struct{ Total, Online int }
				} `json:"mTLS"`
			}
			if err := cpObsJSON(t, cp.URL+"/mesh-insights/default", &mi); err != nil {
				return err
			}
			if mi.MTLS.IssuedBackends["ca-1"].Online != 2 {
				return fmt.Errorf("mesh mTLS %+v", mi.MTLS)
			}
			return nil
		})
		eventually(t, 10*time.Second, "traffic over mTLS", func() error {
			_, err := get(c, fmt.Sprintf("http://127.0.0.1:%d/", out))
			return err
		})
	})

	t.Run("service map", func(t *testing.T) {
		var sm struct {
			Mesh, Window, Updated string
			Services              []struct {
				Name       string
				Dataplanes struct{ Total, Online, Offline int }
			}
			Edges []struct {
				Source, Destination string
				RequestsPerSecond   float64
				ErrorRate           float64
				Requests            int
			}
		}
		eventually(t, 30*time.Second, "the service map to show frontend → backend with a rate", func() error {
			if err := cpObsJSON(t, cp.URL+"/meshes/default/_service-map", &sm); err != nil {
				return err
			}
			for _, e := range sm.Edges {
				if e.Source == "frontend" && e.Destination == "backend" && e.RequestsPerSecond > 0 && e.Requests > 0 {
					return nil
				}
			}
			return fmt.Errorf("service map %+v", sm)
		})
		if sm.Mesh != "default" || sm.Window != "30s" || len(sm.Services) != 2 || sm.Services[0].Name != "backend" || sm.Services[0].Dataplanes.Online != 1 {
			t.Errorf("service map %+v", sm)
		}
		if _, err := time.Parse(time.RFC3339, sm.Updated); err != nil {
			t.Errorf("updated %q: %v", sm.Updated, err)
		}
		for _, e := range sm.Edges {
			// (A request may fail while the mesh switches to mTLS: the rate is only bounded.)
			if e.ErrorRate < 0 || e.ErrorRate > 1 || e.Source == e.Destination || strings.Contains(e.Destination, "localhost") {
				t.Errorf("edge %+v", e)
			}
		}
	})
}
