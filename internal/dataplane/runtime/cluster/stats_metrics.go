package cluster

import "github.com/trellis-mesh/trellis/internal/dataplane/runtime/stats"

// registerRetryStats creates the retry counters that the HTTP router
// increments (upstream_rq_retry, upstream_rq_retry_success,
// upstream_rq_per_try_timeout) for every cluster, so that they are
// exported at zero, as Envoy exports them, even for clusters no route
// retries to: dashboards then find the series.
func registerRetryStats(sc stats.Scope) {
	sc.Counter("upstream_rq_retry")
	sc.Counter("upstream_rq_retry_success")
	sc.Counter("upstream_rq_per_try_timeout")
}
