package main

import (
	"encoding/json"
	"fmt"

	"github.com/trellis-mesh/trellis/internal/dataplane/bootstrap"
)

// Proxy types of --proxy-type, as kuma-dp names them.
const (
	proxyTypeDataplane = "dataplane"
	proxyTypeIngress   = "ingress"
	proxyTypeEgress    = "egress"
)

// zoneProxyResource checks --proxy-type against the resource of the
// --dataplane-file and, for a zone proxy, gives the resource its kind
// (ZoneIngress or ZoneEgress) when the file leaves it out and drops any
// mesh (zone proxies serve every mesh). It returns the bootstrap's
// proxyType.
func zoneProxyResource(dp *bootstrap.Dataplane, proxyType string) (string, error) {
	var kind string
	switch proxyType {
	case "", proxyTypeDataplane:
		return proxyTypeDataplane, nil
	case proxyTypeIngress:
		kind = "ZoneIngress"
	case proxyTypeEgress:
		kind = "ZoneEgress"
	default:
		return "", fmt.Errorf("--proxy-type %q: must be dataplane, ingress or egress", proxyType)
	}
	var obj map[string]any
	if err := json.Unmarshal(dp.JSON, &obj); err != nil {
		return "", fmt.Errorf("the %s: %w", kind, err)
	}
	switch t, _ := obj["type"].(string); t {
	case "":
		obj["type"] = kind
	case kind:
	default:
		return "", fmt.Errorf("--proxy-type %s needs a %s in --dataplane-file, got type %q", proxyType, kind, t)
	}
	delete(obj, "mesh")
	js, err := json.Marshal(obj)
	if err != nil {
		return "", err
	}
	dp.JSON, dp.Mesh = js, ""
	return proxyType, nil
}
