package format

import "strings"

// Kuma's placeholders, which the control plane substitutes when it builds
// a proxy's configuration (they never reach a proxy).
const (
	KumaMesh                     = "%KUMA_MESH%"
	KumaSourceService            = "%KUMA_SOURCE_SERVICE%"
	KumaDestinationService       = "%KUMA_DESTINATION_SERVICE%"
	KumaSourceAddress            = "%KUMA_SOURCE_ADDRESS%"
	KumaSourceAddressWithoutPort = "%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%"
	KumaTrafficDirection         = "%KUMA_TRAFFIC_DIRECTION%"
	KumaZone                     = "%KUMA_ZONE%"
)

// KumaVars are the values of Kuma's placeholders for one listener.
type KumaVars struct {
	Mesh, SourceService, DestinationService, TrafficDirection, Zone string
}

// Interpolate replaces Kuma's placeholders in s. The source address ones
// become Envoy's %DOWNSTREAM_REMOTE_ADDRESS% operators (the caller's
// address as the proxy sees it), because a proxy's outbound listeners are
// shared between proxies and may not carry one proxy's address.
func (v KumaVars) Interpolate(s string) string {
	if !strings.Contains(s, "%KUMA_") {
		return s
	}
	return strings.NewReplacer(
		KumaMesh, v.Mesh,
		KumaSourceService, v.SourceService,
		KumaDestinationService, v.DestinationService,
		KumaSourceAddressWithoutPort, "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
		KumaSourceAddress, "%DOWNSTREAM_REMOTE_ADDRESS%",
		KumaTrafficDirection, v.TrafficDirection,
		KumaZone, v.Zone,
	).Replace(s)
}
