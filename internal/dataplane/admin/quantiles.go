package admin

import (
	"strconv"
	"strings"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// envoyQuantiles are the quantiles Envoy's /stats shows for a histogram.
var envoyQuantiles = []struct {
	label string
	q     float64
}{{"P0", 0}, {"P25", .25}, {"P50", .5}, {"P75", .75}, {"P90", .9}, {"P95", .95}, {"P99", .99}, {"P99.5", .995}, {"P99.9", .999}, {"P100", 1}}

// quantileLine renders a histogram as Envoy's /stats does:
// "P0(nan,v) P25(nan,v) ...", where the second value is the quantile over
// the proxy's lifetime (trellis-dp keeps no interval histograms, hence
// nan) in milliseconds, interpolated in its bucket; "No recorded values"
// when empty.
func quantileLine(h stats.HistogramValue) string {
	if h.Count == 0 {
		return "No recorded values"
	}
	parts := make([]string, 0, len(envoyQuantiles))
	for _, eq := range envoyQuantiles {
		parts = append(parts, eq.label+"(nan,"+strconv.FormatFloat(quantile(h, eq.q), 'g', 4, 64)+")")
	}
	return strings.Join(parts, " ")
}

// quantile estimates the q-quantile from the cumulative buckets by linear
// interpolation inside the bucket it falls in (the last finite bound for
// the overflow bucket).
func quantile(h stats.HistogramValue, q float64) float64 {
	rank := q * float64(h.Count)
	lower, below := 0.0, uint64(0)
	for i, ub := range stats.DefaultBuckets {
		c := h.Cumulative[i]
		if float64(c) >= rank && c > below {
			return lower + (ub-lower)*(rank-float64(below))/float64(c-below)
		}
		lower, below = ub, c
	}
	return stats.DefaultBuckets[len(stats.DefaultBuckets)-1]
}
