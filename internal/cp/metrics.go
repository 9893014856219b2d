package cp

import (
	"github.com/trellis-mesh/trellis/internal/apiserver"
	"github.com/trellis-mesh/trellis/internal/cpmetrics"
	"github.com/trellis-mesh/trellis/internal/cpmetrics/proxystats"
	"github.com/trellis-mesh/trellis/internal/insights"
	"github.com/trellis-mesh/trellis/internal/manager"
	"github.com/trellis-mesh/trellis/internal/store"
	"github.com/trellis-mesh/trellis/internal/store/metered"
)

// observability is the control plane's own metrics and the samples of
// the metrics proxies stream to it.
type observability struct {
	metrics *cpmetrics.Metrics
	stats   *proxystats.Store
}

func newObservability() *observability {
	return &observability{metrics: cpmetrics.New(), stats: proxystats.New(proxystats.DefaultWindow)}
}

// meter wraps the store so its operations are timed.
func (o *observability) meter(st store.Store, storeType string) store.Store {
	return metered.New(st, storeType, o.metrics)
}

// register mounts /metrics, the insight endpoints and the service map on
// the API, and times its requests.
func (o *observability) register(api *apiserver.Server, mgr *manager.Manager) {
	api.UseMetrics(o.metrics)
	api.Handle("GET /metrics", o.metrics.Handler())
	apiserver.NewInsightHandlers(insights.NewReader(mgr), o.stats).Register(api)
}
