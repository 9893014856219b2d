package httpproxy

import (
	"time"

	"github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"
)

// recordSince records the time from start to now in h. Deferred by the
// request paths (ServeHTTP, serveH1) for downstream_rq_time: the request's
// start to the end of its response.
func recordSince(h *stats.Histogram, start time.Time) { h.RecordDuration(time.Since(start)) }
