package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestGUI runs `trellisctl demo` (a control plane, frontend → backend and
// their sidecars), sends traffic through the mesh and reads every page of
// the GUI in headless Chromium: the overview, the dataplanes, the
// policies, a policy, a dataplane with its matched policies and generated
// config, a service, the live service map with the frontend → backend
// edge, dark mode, and the overview at phone width without horizontal
// overflow. The console must stay free of errors and uncaught exceptions.
// Screenshots of each page are kept (see artifactsDir).
func TestGUI(t *testing.T) {
	chromium := findChromium(t)
	_, apiPort, _ := net.SplitHostPort(freeAddr(t))
	d := startDemo(t, filepath.Join(binDir, "trellisctl"), "--api-port", apiPort, "--backends", "2")
	frontend := d.waitFor(demoFrontendURL, 90*time.Second)
	api := "http://127.0.0.1:" + apiPort

	// Traffic frontend → backend for the whole test: the service map shows
	// the rate of the last window.
	ctx, stopTraffic := context.WithCancel(context.Background())
	t.Cleanup(stopTraffic)
	var sent, failed atomic.Int64
	go sendTraffic(ctx, frontend, &sent, &failed)

	tolerated := absentOptionalEndpoints(t, api)
	b := startBrowser(t, chromium)
	b.do("opening the GUI", 30*time.Second, chromedp.Navigate(api+"/gui"))

	t.Run("overview", func(t *testing.T) { guiOverview(t, b) })
	t.Run("dataplanes", func(t *testing.T) { guiDataplanes(t, b) })
	t.Run("policies", func(t *testing.T) { guiPolicies(t, b, api) })
	t.Run("dataplane", func(t *testing.T) { guiDataplane(t, b, api) })
	t.Run("service", func(t *testing.T) { guiService(t, b) })
	t.Run("service map", func(t *testing.T) { guiServiceMap(t, b, api) })
	t.Run("dark and phone", func(t *testing.T) { guiDarkAndPhone(t, b) })
	t.Run("without insights", func(t *testing.T) { tolerated = append(tolerated, guiWithoutInsights(t, b, api)...) })

	stopTraffic()
	t.Logf("sent %d requests to the frontend (%d failed)", sent.Load(), failed.Load())
	for _, p := range b.problems() {
		if isTolerated(p, tolerated) {
			t.Logf("tolerated (the control plane does not serve this optional endpoint): %s", p)
			continue
		}
		t.Errorf("browser console: %s", p)
	}
}

func sendTraffic(ctx context.Context, url string, sent, failed *atomic.Int64) {
	client := &http.Client{Timeout: 5 * time.Second}
	for ctx.Err() == nil {
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			failed.Add(1)
		} else {
			sent.Add(1)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// absentOptionalEndpoints lists the endpoints the GUI falls back from
// (Kuma's insights) that this control plane answers 404; the browser
// logs those 404s, which the test then tolerates. The service map is not
// optional: its test fails without it.
func absentOptionalEndpoints(t *testing.T, api string) []string {
	var absent []string
	for _, p := range []string{"/global-insight", "/mesh-insights"} {
		resp, err := http.Get(api + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			t.Logf("NOTE: the control plane answers 404 to GET %s; the GUI falls back to the dataplane overviews", p)
			absent = append(absent, api+p)
		}
	}
	return absent
}

func isTolerated(problem string, urls []string) bool {
	for _, u := range urls {
		if strings.Contains(problem, "404") && strings.Contains(problem, "("+u+":") {
			return true
		}
	}
	return false
}

func getJSONInto(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d: %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func guiOverview(t *testing.T, b *browser) {
	b.t = t
	b.waitFor("the overview with both services and mTLS", mainHas("Overview", "Meshes", "default", "backend", "frontend", "mTLS permissive", "3 online · 0 offline"), 30*time.Second)
	b.screenshot("01-overview")
	// The first Tab reaches the skip link, which moves focus to the content.
	b.do("pressing Tab, then Enter", 5*time.Second, chromedp.KeyEvent("\t"), chromedp.Sleep(100*time.Millisecond))
	if got := eval[string](b, `document.activeElement.textContent`); got != "Skip to content" {
		t.Errorf("the first Tab focuses %q, want the skip link", got)
	}
	b.do("following the skip link", 5*time.Second, chromedp.KeyEvent("\r"), chromedp.Sleep(100*time.Millisecond))
	if got := eval[string](b, `document.activeElement.id + ' ' + location.hash`); got != "main #/" && got != "main " {
		t.Errorf("after the skip link, focus and route are %q, want main and the overview", got)
	}
	b.route("#/meshes/default")
	b.waitFor("the default mesh", mainHas("Mesh default", "mTLS", "Policies", "MeshTrafficPermission"), 20*time.Second)
	b.screenshot("02-mesh-default")
}

const dataplaneRows = `[...document.querySelectorAll('main tbody tr')].filter((tr) => !tr.querySelector('td.empty'))`

func guiDataplanes(t *testing.T, b *browser) {
	b.t = t
	b.route("#/meshes/default/dataplanes")
	b.waitFor("the demo's three dataplanes online",
		dataplaneRows+`.length === 3 && `+dataplaneRows+`.every((tr) => tr.innerText.includes('Online')) && `+mainHas("frontend-1", "backend-1", "backend-2", "127.0.0.1"), 20*time.Second)
	b.screenshot("03-dataplanes")
	// From the keyboard: "/" focuses the search box; typing filters.
	b.pressKey("/", "Slash", 191)
	if focused := eval[bool](b, `document.activeElement === document.querySelector('main input[type=search]')`); !focused {
		t.Errorf("pressing / does not focus the search box (focus is on %s)", eval[string](b, `document.activeElement.outerHTML.slice(0, 80)`))
	}
	b.do("typing a search", 5*time.Second, chromedp.KeyEvent("backend"))
	b.waitFor("two dataplanes matching 'backend'", dataplaneRows+`.length === 2 && !document.querySelector('main').innerText.includes('frontend-1')`, 10*time.Second)
	if !strings.Contains(eval[string](b, "location.hash"), "q=backend") {
		t.Errorf("the search is not kept in the URL: %s", eval[string](b, "location.hash"))
	}
	b.route("#/dataplanes?service=frontend")
	b.waitFor("the frontend dataplane of all meshes", dataplaneRows+`.length === 1 && `+mainHas("frontend-1", "Dataplanes in all meshes"), 10*time.Second)
}

func guiPolicies(t *testing.T, b *browser, api string) {
	b.t = t
	var res struct {
		Resources []struct {
			Name   string          `json:"name"`
			Path   string          `json:"path"`
			Scope  string          `json:"scope"`
			Policy json.RawMessage `json:"policy"`
		} `json:"resources"`
	}
	getJSONInto(t, api+"/_resources", &res)
	b.route("#/meshes/default/policies")
	var kinds []string
	for _, r := range res.Resources {
		if r.Policy != nil && r.Scope == "Mesh" {
			kinds = append(kinds, r.Name)
		}
	}
	b.waitFor("every policy kind", mainHas(kinds...), 20*time.Second)
	b.screenshot("04-policy-kinds")
	total := 0
	for _, r := range res.Resources {
		if r.Policy == nil || r.Scope != "Mesh" {
			continue
		}
		var list struct {
			Items []struct {
				Name string `json:"name"`
			} `json:"items"`
		}
		getJSONInto(t, api+"/meshes/default/"+r.Path, &list)
		if len(list.Items) == 0 {
			continue
		}
		var names []string
		for _, it := range list.Items {
			names = append(names, it.Name)
		}
		total += len(names)
		b.route("#/meshes/default/policies/" + r.Path)
		b.waitFor(fmt.Sprintf("the %s policies %v", r.Name, names), mainHas(append(names, fmt.Sprintf("%d of %d", len(names), len(names)))...), 20*time.Second)
		if r.Name == "MeshTrafficPermission" {
			b.screenshot("05-policies-meshtrafficpermissions")
		}
	}
	if total < 4 {
		t.Errorf("the demo has %d policies, want its allow-all and the mesh's default timeout, retry and circuit breaker", total)
	}
	b.route("#/meshes/default/policies/meshtrafficpermissions/allow-all")
	b.waitFor("the allow-all policy with its YAML and the dataplanes it selects",
		mainHas("allow-all", "type: MeshTrafficPermission", "action: Allow", "Selected dataplanes", "frontend-1", "backend-1", "backend-2"), 20*time.Second)
	b.screenshot("06-policy-allow-all")
}

func guiDataplane(t *testing.T, b *browser, api string) {
	b.t = t
	var rules struct {
		Rules []struct {
			Type     string `json:"type"`
			Policies []struct {
				Name string `json:"name"`
			} `json:"policies"`
		} `json:"rules"`
	}
	getJSONInto(t, api+"/meshes/default/dataplanes/frontend-1/_rules", &rules)
	var checks []string
	var want []string
	for _, k := range rules.Rules {
		for _, p := range k.Policies {
			checks = append(checks, fmt.Sprintf(`document.querySelector('[data-kind=%s]')?.innerText.includes(%s)`, jsString(k.Type), jsString(p.Name)))
			want = append(want, k.Type+"/"+p.Name)
		}
	}
	sort.Strings(want)
	if len(checks) < 2 {
		t.Fatalf("frontend-1 matches %v; want at least the demo's MeshTrafficPermission and the default policies", want)
	}
	b.route("#/meshes/default/dataplanes/frontend-1")
	b.waitFor("frontend-1 with its status, certificate and matched policies "+strings.Join(want, ", "),
		mainHas("frontend-1", "Online", "Inbounds", "Outbounds", "backend", "Matched policies", "Certificate")+" && "+strings.Join(checks, " && "), 20*time.Second)
	b.screenshot("07-dataplane-frontend-1")
	eval[chromedp.Void](b, `document.querySelector('main details.collapsible summary').click()`)
	b.waitFor("the generated config", `(document.querySelector('main details.collapsible pre')?.textContent || '').includes('ListenersConfigDump')`, 20*time.Second)
	eval[chromedp.Void](b, `(() => { const i = document.querySelector('main details.collapsible input[type=search]'); i.value = 'outbound'; i.dispatchEvent(new Event('input')); })()`)
	b.waitFor("config search matches", `document.querySelectorAll('main details.collapsible pre mark').length > 0`, 10*time.Second)
	b.screenshot("08-dataplane-frontend-1-config")
}

func guiService(t *testing.T, b *browser) {
	b.t = t
	b.route("#/meshes/default/services/backend")
	b.waitFor("the backend service and its two dataplanes", mainHas("backend", "backend-1", "backend-2", "2 online · 0 offline", "Traffic"), 20*time.Second)
	b.screenshot("09-service-backend")
}

func guiServiceMap(t *testing.T, b *browser, api string) {
	b.t = t
	resp, err := http.Get(api + "/meshes/default/_service-map")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /meshes/default/_service-map = %d: the control plane serves no service map, so the GUI cannot show the frontend → backend edge", resp.StatusCode)
	}
	b.route("#/meshes/default/map")
	edge := `document.querySelector('main g.map-edge[data-source="frontend"][data-destination="backend"]')`
	b.waitFor("the frontend → backend edge with a non-zero rate", fmt.Sprintf(`Number(%s?.dataset.rps) > 0 && %s`, edge, mainHas("Live", "frontend", "backend", "req/s")), 60*time.Second)
	label := eval[string](b, edge+`.querySelector('title').textContent`)
	t.Logf("service map edge: %s", label)
	b.screenshot("10-service-map")
}

func guiDarkAndPhone(t *testing.T, b *browser) {
	b.t = t
	b.colorScheme("dark")
	b.route("#/meshes/default/dataplanes/frontend-1")
	b.waitFor("frontend-1 in dark mode", mainHas("frontend-1", "Matched policies"), 20*time.Second)
	if bg := eval[string](b, `getComputedStyle(document.body).backgroundColor`); bg == "rgb(246, 247, 249)" {
		t.Errorf("prefers-color-scheme: dark leaves the light background %s", bg)
	}
	b.screenshot("11-dataplane-dark")
	b.colorScheme("light")

	b.do("a phone-width viewport", 10*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.route("#/")
	b.waitFor("the overview at phone width", mainHas("Overview", "backend", "frontend"), 20*time.Second)
	b.do("settling the layout", 5*time.Second, chromedp.Sleep(300*time.Millisecond))
	overflow := eval[[]int](b, `[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]`)
	if len(overflow) != 3 || overflow[0] > overflow[2] || overflow[1] > overflow[2] {
		t.Errorf("at 390x844 the overview overflows horizontally: scrollWidth %v, innerWidth %d", overflow[:2], overflow[2])
	}
	b.screenshot("12-overview-phone")
	b.route("#/meshes/default/dataplanes")
	b.waitFor("the dataplanes at phone width", mainHas("frontend-1", "backend-1", "backend-2"), 20*time.Second)
	b.screenshot("13-dataplanes-phone")
	b.route("#/meshes/default/map")
	b.waitFor("the service map at phone width", `document.querySelector('main g.map-edge[data-source="frontend"][data-destination="backend"]') !== null`, 30*time.Second)
	if w := eval[[]int](b, `[document.documentElement.scrollWidth, window.innerWidth]`); len(w) != 2 || w[0] > w[1] {
		t.Errorf("at 390x844 the service map page overflows horizontally: scrollWidth %v", w)
	}
	b.screenshot("14-service-map-phone")
	b.do("a laptop viewport", 10*time.Second, chromedp.EmulateViewport(1280, 900))
}

// guiWithoutInsights serves the GUI through a proxy that answers 404 to
// the insight endpoints and the service map, as an older control plane
// would: the GUI computes the overview from the dataplanes and draws the
// services without traffic. It returns the URLs whose 404s the browser
// logs.
func guiWithoutInsights(t *testing.T, b *browser, api string) []string {
	b.t = t
	target, err := url.Parse(api)
	if err != nil {
		t.Fatal(err)
	}
	hidden := []string{"/global-insight", "/mesh-insights", "/meshes/default/service-insights", "/meshes/default/_service-map"}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range hidden {
			if r.URL.Path == p {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusNotFound)
				fmt.Fprintf(w, `{"type":"/std-errors","status":404,"title":"Not found","detail":"unknown resource type %q"}`, strings.TrimPrefix(p, "/"))
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	b.do("opening the GUI through the proxy", 30*time.Second, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(srv.URL+"/gui/#/"))
	b.waitFor("the overview computed from the dataplanes", mainHas("Overview", "3 online · 0 offline", "backend", "frontend", "mTLS permissive"), 20*time.Second)
	b.route("#/meshes/default/map")
	b.waitFor("the services, without traffic", `document.querySelectorAll('main .map-node').length === 2 && `+mainHas("No traffic data", "frontend", "backend"), 20*time.Second)
	b.screenshot("15-service-map-without-insights")
	urls := make([]string, 0, len(hidden))
	for _, p := range hidden {
		urls = append(urls, srv.URL+p)
	}
	return urls
}
