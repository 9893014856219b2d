package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A new mesh gets Kuma's default timeout, retry and circuit breaker
// policies; their values are in both proxies' configuration (the client's
// outbound cluster and route, the backend's inbound), the proxies accepted
// it, and traffic flows.
func TestPolicyDefaults(t *testing.T) {
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})
	for _, want := range []struct{ plural, name string }{
		{"meshtimeouts", "mesh-timeout-all-default"},
		{"meshretries", "mesh-retry-all-default"},
		{"meshcircuitbreakers", "mesh-circuit-breaker-all-default"},
	} {
		resp, err := http.Get(cp.URL + "/meshes/default/" + want.plural + "/" + want.name)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the default mesh has no %s %s: status %d", want.plural, want.name, resp.StatusCode)
		}
	}

	web := startTestApp(t, "web-1")
	webDP := serviceDP(t, "web-1", "web", "http", web.port)
	backend := startDP(t, cp, "web-1", webDP)
	out := freePort(t)
	client := startDP(t, cp, "client-1", clientDP(t, "client-1", map[int]string{out: "web"}))
	c := newClient()
	eventually(t, 10*time.Second, "traffic through the mesh", func() error { _, err := get(c, fmt.Sprintf("http://127.0.0.1:%d/", out)); return err })

	// Each check reads one field of one resource of a proxy's config dump.
	type field struct {
		what string
		path []any
		want any
	}
	check := func(t *testing.T, p *proxy, kind, name string, fields []field) error {
		res := dumpResource(configDump(t, p), kind, name)
		if res == nil {
			return fmt.Errorf("%s has no %s %q", p.name, kind, name)
		}
		var bad []string
		for _, f := range fields {
			if got := dig(res, f.path...); fmt.Sprint(got) != fmt.Sprint(f.want) {
				bad = append(bad, fmt.Sprintf("%s: %v, want %v", f.what, got, f.want))
			}
		}
		if len(bad) > 0 {
			js, _ := json.MarshalIndent(res, "", "  ")
			return fmt.Errorf("%s %s %q:\n  %s\n%s", p.name, kind, name, strings.Join(bad, "\n  "), js)
		}
		return nil
	}
	hpo := []any{"typed_extension_protocol_options", "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "common_http_protocol_options"}
	route := []any{"virtual_hosts", 0, "routes", 0, "route"}
	thresholds := []any{"circuit_breakers", "thresholds", 0}
	cat := func(a []any, b ...any) []any { return append(append([]any{}, a...), b...) }

	t.Run("outbound", func(t *testing.T) {
		within(t, cp, "client-1", 10*time.Second, "the defaults on the outbound cluster", func() error {
			return check(t, client, "cluster", "web", []field{
				{"connect_timeout (MeshTimeout connectionTimeout)", []any{"connect_timeout"}, "5s"},
				{"idle_timeout (MeshTimeout idleTimeout)", cat(hpo, "idle_timeout"), "3600s"},
				{"max_connections", cat(thresholds, "max_connections"), 1024},
				{"max_pending_requests", cat(thresholds, "max_pending_requests"), 1024},
				{"max_requests", cat(thresholds, "max_requests"), 1024},
				{"max_retries", cat(thresholds, "max_retries"), 3},
			})
		})
		within(t, cp, "client-1", 10*time.Second, "the defaults on the outbound route", func() error {
			return check(t, client, "route_config", "outbound:web", []field{
				{"timeout (MeshTimeout http.requestTimeout)", cat(route, "timeout"), "15s"},
				{"idle_timeout (MeshTimeout http.streamIdleTimeout)", cat(route, "idle_timeout"), "1800s"},
				{"retry num_retries", cat(route, "retry_policy", "num_retries"), 5},
				{"retry per_try_timeout", cat(route, "retry_policy", "per_try_timeout"), "16s"},
				{"retry base_interval", cat(route, "retry_policy", "retry_back_off", "base_interval"), "0.025s"},
				{"retry max_interval", cat(route, "retry_policy", "retry_back_off", "max_interval"), "0.250s"},
			})
		})
	})

	t.Run("inbound", func(t *testing.T) {
		var port, servicePort int
		for _, line := range splitLines(webDP) {
			fmt.Sscanf(line, "  - port: %d", &port)
			fmt.Sscanf(line, "    servicePort: %d", &servicePort)
		}
		within(t, cp, "web-1", 10*time.Second, "the defaults on the inbound cluster", func() error {
			return check(t, backend, "cluster", fmt.Sprintf("localhost:%d", servicePort), []field{
				{"connect_timeout (MeshTimeout from connectionTimeout)", []any{"connect_timeout"}, "10s"},
			})
		})
		within(t, cp, "web-1", 10*time.Second, "the defaults on the inbound route", func() error {
			return check(t, backend, "route_config", "inbound:web", []field{
				{"timeout (MeshTimeout from http.requestTimeout 0: disabled)", cat(route, "timeout"), "0s"},
			})
		})
		hcm := []any{"filter_chains", 0, "filters", 0, "typed_config"}
		within(t, cp, "web-1", 10*time.Second, "the defaults on the inbound listener", func() error {
			return check(t, backend, "listener", fmt.Sprintf("inbound:127.0.0.1:%d", port), []field{
				{"HCM stream_idle_timeout", cat(hcm, "stream_idle_timeout"), "3600s"},
				{"HCM common_http_protocol_options.idle_timeout", cat(hcm, "common_http_protocol_options", "idle_timeout"), "7200s"},
			})
		})
	})

	t.Run("accepted", func(t *testing.T) {
		for _, name := range []string{"client-1", "web-1"} {
			if nack := lastNack(t, cp, name); nack != "" {
				t.Errorf("%s%s", name, nack)
			}
		}
		seen, err := count(c, fmt.Sprintf("http://127.0.0.1:%d/", out), 20, 2)
		if err != nil || seen["web-1"] != 20 {
			t.Fatalf("traffic with the defaults: %v, %v", seen, err)
		}
	})
}
