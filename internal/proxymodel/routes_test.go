package proxymodel_test

import (
	"regexp"
	"testing"

	"github.com/trellis-mesh/trellis/internal/proxymodel"
)

// Subset cluster names are "<service>-<8 hex>", depend only on the tags
// (kuma.io/service aside), and are the service itself without tags.
func TestSubsetClusterName(t *testing.T) {
	v2 := proxymodel.SubsetClusterName("backend", map[string]string{"version": "v2"})
	if !regexp.MustCompile(`^backend-[0-9a-f]{8}$`).MatchString(v2) {
		t.Fatalf("name %q is not <service>-<8 hex>", v2)
	}
	if got := proxymodel.SubsetClusterName("backend", map[string]string{"version": "v2", "kuma.io/service": "backend"}); got != v2 {
		t.Errorf("kuma.io/service changed the name: %q, want %q", got, v2)
	}
	if got := proxymodel.SubsetClusterName("backend", map[string]string{"version": "v1"}); got == v2 {
		t.Errorf("v1 and v2 share the name %q", got)
	}
	two := proxymodel.SubsetClusterName("backend", map[string]string{"a": "1", "b": "2"})
	if again := proxymodel.SubsetClusterName("backend", map[string]string{"b": "2", "a": "1"}); again != two {
		t.Errorf("names differ: %q, %q", two, again)
	}
	if got := proxymodel.SubsetClusterName("backend", map[string]string{"a": "1=b"}); got == proxymodel.SubsetClusterName("backend", map[string]string{"a": "1", "b": ""}) {
		t.Errorf("ambiguous tag encoding: %q", got)
	}
	for _, tags := range []map[string]string{nil, {}, {"kuma.io/service": "backend"}} {
		if got := proxymodel.SubsetClusterName("backend", tags); got != "backend" {
			t.Errorf("SubsetClusterName(backend, %v) = %q, want backend", tags, got)
		}
	}
}

// RouteCluster adds each cluster once and never the outbound's own.
func TestOutboundRouteCluster(t *testing.T) {
	out := &proxymodel.Outbound{Service: "backend"}
	if got := out.RouteCluster("backend", nil); got != "backend" || len(out.RouteClusters) != 0 {
		t.Fatalf("own cluster: %q, %+v", got, out.RouteClusters)
	}
	a := out.RouteCluster("backend", map[string]string{"version": "v2"})
	b := out.RouteCluster("backend", map[string]string{"version": "v2"})
	c := out.RouteCluster("canary", nil)
	if a != b || c != "canary" || len(out.RouteClusters) != 2 {
		t.Fatalf("got %q %q %q, clusters %+v", a, b, c, out.RouteClusters)
	}
	if rc := out.RouteClusters[0]; rc.Service != "backend" || rc.Tags["version"] != "v2" {
		t.Fatalf("subset cluster %+v", rc)
	}
}
