package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/dataplane/bootstrap"
)

// --proxy-type ingress gives the file its kind and drops its mesh; a
// file of another kind and an unknown proxy type are errors naming them.
func TestZoneProxyResource(t *testing.T) {
	dp := &bootstrap.Dataplane{JSON: []byte(`{"name":"zi-1","mesh":"default","networking":{"port":10001}}`), Name: "zi-1", Mesh: "default"}
	pt, err := zoneProxyResource(dp, "ingress")
	if err != nil || pt != "ingress" {
		t.Fatalf("ingress: %q %v", pt, err)
	}
	var obj map[string]any
	_ = json.Unmarshal(dp.JSON, &obj)
	if obj["type"] != "ZoneIngress" || obj["mesh"] != nil || dp.Mesh != "" {
		t.Fatalf("the ingress resource is %s (mesh %q)", dp.JSON, dp.Mesh)
	}
	if _, err := zoneProxyResource(&bootstrap.Dataplane{JSON: []byte(`{"type":"Dataplane","name":"x"}`)}, "egress"); err == nil || !strings.Contains(err.Error(), `needs a ZoneEgress in --dataplane-file, got type "Dataplane"`) {
		t.Fatalf("egress with a Dataplane: %v", err)
	}
	if _, err := zoneProxyResource(&bootstrap.Dataplane{JSON: []byte(`{}`)}, "gateway"); err == nil || !strings.Contains(err.Error(), `--proxy-type "gateway"`) {
		t.Fatalf("unknown proxy type: %v", err)
	}
	if pt, err := zoneProxyResource(&bootstrap.Dataplane{JSON: []byte(`{}`)}, ""); err != nil || pt != "dataplane" {
		t.Fatalf("default: %q %v", pt, err)
	}
}
