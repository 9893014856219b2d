package resource

import (
	"encoding/json"
	"fmt"
)

// meshMetricWarnings says which MeshMetric backends trellis does not
// serve yet: an OpenTelemetry backend is accepted (Kuma's shape) but no
// proxy pushes metrics to it.
func meshMetricWarnings(spec []byte) []string {
	var s struct {
		Default *struct {
			Backends []struct {
				Type string `json:"type"`
			} `json:"backends"`
		} `json:"default"`
	}
	if json.Unmarshal(spec, &s) != nil || s.Default == nil {
		return nil
	}
	var out []string
	for i, b := range s.Default.Backends {
		if b.Type == "OpenTelemetry" {
			out = append(out, fmt.Sprintf("spec.default.backends[%d]: the OpenTelemetry backend is not supported yet: proxies do not push metrics to it (use a Prometheus backend)", i))
		}
	}
	return out
}
