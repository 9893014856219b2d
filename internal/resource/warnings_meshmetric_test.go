package resource

import (
	"strings"
	"testing"
)

func TestMeshMetricWarnings(t *testing.T) {
	got := meshMetricWarnings([]byte(`{"default":{"backends":[{"type":"Prometheus"},{"type":"OpenTelemetry","openTelemetry":{"endpoint":"c:4317"}}]}}`))
	if len(got) != 1 || !strings.HasPrefix(got[0], "spec.default.backends[1]: the OpenTelemetry backend is not supported yet") {
		t.Errorf("warnings = %q", got)
	}
	if got := meshMetricWarnings([]byte(`{"default":{"backends":[{"type":"Prometheus"}]}}`)); len(got) != 0 {
		t.Errorf("warnings for Prometheus only = %q", got)
	}
}
