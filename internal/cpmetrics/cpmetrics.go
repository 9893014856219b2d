// Package cpmetrics holds the control plane's own Prometheus metrics,
// served as text on the API's /metrics: xDS generation, push and ACK
// latencies, connected proxies, NACKs, store latency and API requests,
// plus the Go runtime and process collectors.
//
// Every metric lives in a registry the control plane owns (never the
// global default registry), so several control planes in one test process
// do not share counters. Names follow Kuma's where a Kuma dashboard looks
// for them (xds_generation, xds_delivery, xds_streams_active, store,
// api_server_http_request_duration_seconds; Kuma's counters
// xds_requests_received, xds_responses_sent and xds_generation_errors get
// the _total suffix Prometheus requires of counters, so that promtool
// check metrics is clean); the others carry the trellis_cp_ prefix.
//
// Every method is safe on a nil *Metrics (it does nothing), so components
// built without metrics (unit tests) need no special case.
package cpmetrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// xDS modes, the xds_mode label of connected proxies.
const (
	ModeSotW  = "sotw"
	ModeDelta = "delta"
)

// Metrics is the control plane's metric set.
type Metrics struct {
	reg *prometheus.Registry

	xdsGeneration       prometheus.Histogram
	xdsGenerationErrors prometheus.Counter
	pushLatency         prometheus.Histogram
	ackLatency          prometheus.Histogram
	delivery            prometheus.Histogram
	connectedProxies    *prometheus.GaugeVec
	streamsActive       prometheus.Gauge
	requestsReceived    *prometheus.CounterVec
	nacks               *prometheus.CounterVec
	responsesSent       *prometheus.CounterVec
	store               *prometheus.HistogramVec
	apiRequests         *prometheus.CounterVec
	apiDuration         *prometheus.HistogramVec
	dpMetricsStreams    prometheus.Gauge
	dpMetricsMessages   prometheus.Counter
	info                *prometheus.GaugeVec
}

// msBuckets are the buckets of the millisecond histograms (Kuma measures
// xds_generation and xds_delivery in milliseconds).
var msBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}

// secondBuckets are the buckets of the latency histograms in seconds.
var secondBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// New returns a metric set registered in a new registry, with the Go and
// process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.xdsGeneration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "xds_generation", Help: "Time to generate the xDS configuration of one proxy, in milliseconds (Kuma's name and unit).",
		Buckets: msBuckets,
	})
	m.xdsGenerationErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "xds_generation_errors_total", Help: "Number of xDS generations of a proxy that failed.",
	})
	m.pushLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "trellis_cp_xds_push_latency_seconds", Help: "Time from a change seen by the control plane (store event or proxy connection) to the first xDS response carrying the new configuration.",
		Buckets: secondBuckets,
	})
	m.ackLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "trellis_cp_xds_ack_latency_seconds", Help: "Time from an xDS response sent to its ACK by the proxy.",
		Buckets: secondBuckets,
	})
	m.delivery = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "xds_delivery", Help: "Time from a configuration sent to a proxy to its ACK, in milliseconds (Kuma's name and unit).",
		Buckets: msBuckets,
	})
	m.connectedProxies = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "trellis_cp_connected_proxies", Help: "Proxies connected to this control-plane instance over xDS, by mesh and xDS mode (sotw or delta).",
	}, []string{"mesh", "xds_mode"})
	m.streamsActive = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "xds_streams_active", Help: "Open xDS streams.",
	})
	m.requestsReceived = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xds_requests_received_total", Help: "xDS requests that answer a response, by type URL and confirmation (ACK or NACK).",
	}, []string{"type_url", "confirmation"})
	m.nacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trellis_cp_xds_nacks_total", Help: "xDS responses proxies rejected (NACK), by mesh and type URL.",
	}, []string{"mesh", "type_url"})
	m.responsesSent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xds_responses_sent_total", Help: "xDS responses sent to proxies, by type URL.",
	}, []string{"type_url"})
	m.store = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "store", Help: "Duration of store operations in seconds, by operation, resource type and store type (Kuma's name).",
		Buckets: secondBuckets,
	}, []string{"operation", "resource_type", "store_type"})
	m.apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "trellis_cp_api_requests_total", Help: "REST API requests, by method, route pattern (handler) and status code.",
	}, []string{"method", "handler", "code"})
	m.apiDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "api_server_http_request_duration_seconds", Help: "Duration of REST API requests in seconds, by method, route pattern (handler) and status code (Kuma's name).",
		Buckets: secondBuckets,
	}, []string{"method", "handler", "code"})
	m.dpMetricsStreams = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "trellis_cp_dp_metrics_streams_active", Help: "Open Envoy metrics-service streams from proxies (StreamMetrics).",
	})
	m.dpMetricsMessages = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "trellis_cp_dp_metrics_messages_total", Help: "Metrics messages received from proxies over the metrics service.",
	})
	m.info = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cp_info", Help: "Always 1: this control-plane instance, its cluster, product and version (Kuma's name; its dashboards pick instances from it).",
	}, []string{"instance_id", "cluster_id", "product", "version"})
	m.reg.MustRegister(
		m.info, m.xdsGeneration, m.xdsGenerationErrors, m.pushLatency, m.ackLatency, m.delivery,
		m.connectedProxies, m.streamsActive, m.requestsReceived, m.nacks, m.responsesSent,
		m.store, m.apiRequests, m.apiDuration, m.dpMetricsStreams, m.dpMetricsMessages,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry returns the registry every metric is in.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// SetInfo publishes cp_info for this instance.
func (m *Metrics) SetInfo(instanceID, clusterID, version string) {
	if m == nil {
		return
	}
	m.info.Reset()
	m.info.WithLabelValues(instanceID, clusterID, "Trellis", version).Set(1)
}

// ObserveGeneration records one proxy's xDS generation; err says it failed.
func (m *Metrics) ObserveGeneration(d time.Duration, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.xdsGenerationErrors.Inc()
		return
	}
	m.xdsGeneration.Observe(ms(d))
}

// ObservePush records the time from a change seen to the config sent.
func (m *Metrics) ObservePush(d time.Duration) {
	if m == nil {
		return
	}
	m.pushLatency.Observe(d.Seconds())
}

// ObserveACK records the time from a response sent to its ACK.
func (m *Metrics) ObserveACK(d time.Duration) {
	if m == nil {
		return
	}
	m.ackLatency.Observe(d.Seconds())
	m.delivery.Observe(ms(d))
}

// ProxyConnected counts a proxy of mesh connected in mode (ModeSotW or
// ModeDelta); ProxyDisconnected undoes it.
func (m *Metrics) ProxyConnected(mesh, mode string) {
	if m == nil {
		return
	}
	m.connectedProxies.WithLabelValues(mesh, mode).Inc()
}

// ProxyDisconnected undoes ProxyConnected.
func (m *Metrics) ProxyDisconnected(mesh, mode string) {
	if m == nil {
		return
	}
	m.connectedProxies.WithLabelValues(mesh, mode).Dec()
}

// StreamOpened counts an open xDS stream; StreamClosed undoes it.
func (m *Metrics) StreamOpened() {
	if m != nil {
		m.streamsActive.Inc()
	}
}

// StreamClosed undoes StreamOpened.
func (m *Metrics) StreamClosed() {
	if m != nil {
		m.streamsActive.Dec()
	}
}

// ResponseSent counts an xDS response of typeURL.
func (m *Metrics) ResponseSent(typeURL string) {
	if m != nil {
		m.responsesSent.WithLabelValues(typeURL).Inc()
	}
}

// RequestReceived counts a proxy's answer to a response: an ACK, or a
// NACK (nack) of a proxy in mesh.
func (m *Metrics) RequestReceived(mesh, typeURL string, nack bool) {
	if m == nil {
		return
	}
	if nack {
		m.requestsReceived.WithLabelValues(typeURL, "NACK").Inc()
		m.nacks.WithLabelValues(mesh, typeURL).Inc()
		return
	}
	m.requestsReceived.WithLabelValues(typeURL, "ACK").Inc()
}

// ObserveStore records one store operation.
func (m *Metrics) ObserveStore(operation, kind, storeType string, d time.Duration) {
	if m == nil {
		return
	}
	m.store.WithLabelValues(operation, kind, storeType).Observe(d.Seconds())
}

// ObserveAPI records one API request.
func (m *Metrics) ObserveAPI(method, handler string, code int, d time.Duration) {
	if m == nil {
		return
	}
	c := codeString(code)
	m.apiRequests.WithLabelValues(method, handler, c).Inc()
	m.apiDuration.WithLabelValues(method, handler, c).Observe(d.Seconds())
}

// DPMetricsStreamOpened counts an open metrics-service stream; the
// returned function closes it.
func (m *Metrics) DPMetricsStreamOpened() func() {
	if m == nil {
		return func() {}
	}
	m.dpMetricsStreams.Inc()
	return m.dpMetricsStreams.Dec
}

// DPMetricsMessage counts one metrics message from a proxy.
func (m *Metrics) DPMetricsMessage() {
	if m != nil {
		m.dpMetricsMessages.Inc()
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
