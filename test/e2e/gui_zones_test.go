package e2e

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestGUIZonesStandalone reads the GUI's multi-zone parts on a standalone
// control plane: the Zones page says the control plane is standalone and
// the navigation has no Zones item; dataplanes labelled with a zone get a
// Zone column and a zone filter in the list, and their page links the zone.
// (The Zones list of a global control plane is read by TestMultiZone.)
func TestGUIZonesStandalone(t *testing.T) {
	chromium := findChromium(t)
	cp := startCP(t, map[string]string{"TRELLIS_STORE_TYPE": "memory"})
	for _, dp := range []struct{ name, zone, port string }{{"web-1", "zone-1", "18001"}, {"api-1", "zone-2", "18002"}} {
		cp.mustCtl(`type: Dataplane
mesh: default
name: `+dp.name+`
labels:
  kuma.io/zone: `+dp.zone+`
networking:
  address: 127.0.0.1
  inbound:
  - port: `+dp.port+`
    tags:
      kuma.io/service: `+dp.name[:3]+`
`, "apply", "-f", "-")
	}
	b := startBrowser(t, chromium)
	b.do("opening the GUI", 30*time.Second, chromedp.Navigate(cp.URL+"/gui/#/meshes/default/dataplanes"))

	b.waitFor("the Zone column and filter", dataplaneRows+`.length === 2 && `+mainHas("Zone", "zone-1", "zone-2")+
		` && !!document.querySelector('main select option[value="zone-2"]')`, 20*time.Second)
	if eval[bool](b, `[...document.querySelectorAll('#nav a')].some((a) => a.textContent === 'Zones')`) {
		t.Error("a standalone control plane's navigation shows Zones")
	}
	b.screenshot("zones-01-dataplanes-with-zones")

	b.route("#/dataplanes?zone=zone-2")
	b.waitFor("only zone-2's dataplane", dataplaneRows+`.length === 1 && `+mainHas("api-1")+
		` && !document.querySelector('main tbody').innerText.includes('web-1')`, 10*time.Second)

	b.route("#/meshes/default/dataplanes/api-1")
	b.waitFor("the dataplane's zone", `!!document.querySelector('main a[href="#/zones/zone-2"]')`, 10*time.Second)

	b.route("#/zones")
	b.waitFor("the standalone note", mainHas("Zones", "standalone", "has no zones"), 10*time.Second)
	b.screenshot("zones-02-standalone-note")

	for _, p := range b.problems() {
		t.Errorf("browser console: %s", p)
	}
}
