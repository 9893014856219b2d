package admin

import (
	"strings"
	"testing"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

func TestQuantileLine(t *testing.T) {
	var h stats.Histogram
	if got := quantileLine(h.Value()); got != "No recorded values" {
		t.Errorf("empty: %q", got)
	}
	for range 4 {
		h.Record(7) // bucket (5, 10]
	}
	got := quantileLine(h.Value())
	if !strings.HasPrefix(got, "P0(nan,5) P25(nan,6.25) P50(nan,7.5)") || !strings.HasSuffix(got, "P100(nan,10)") {
		t.Errorf("quantiles = %q", got)
	}
}
