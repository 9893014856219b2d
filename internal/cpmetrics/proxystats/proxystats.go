// Package proxystats keeps, per proxy, the recent samples of the metrics
// proxies stream to the control plane (Envoy's metrics service,
// StreamMetrics), and turns them into the service map: who calls whom, at
// what rate, with what error rate.
//
// Only the per-cluster counters the service map needs are kept (requests,
// 5xx answers, connections), as cumulative values with the time they were
// received; rates are differences between the newest sample and the oldest
// one inside the window.
package proxystats

import (
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// DefaultWindow is how far back the service map looks.
const DefaultWindow = 30 * time.Second

// maxSamples bounds the samples kept per proxy whatever the flush interval.
const maxSamples = 128

// Key names a proxy.
type Key struct {
	Mesh, Name string
}

// Counters are one cluster's cumulative counters in one sample.
type Counters struct {
	// Requests is envoy_cluster_upstream_rq_total.
	Requests uint64
	// Errors is envoy_cluster_upstream_rq_xx{envoy_response_code_class="5"}.
	Errors uint64
	// Connections is envoy_cluster_upstream_cx_total.
	Connections uint64
}

// Sample is what one metrics message said, per cluster name.
type Sample struct {
	Time     time.Time
	Clusters map[string]Counters
}

// proxy is one proxy's recent samples, oldest first.
type proxy struct {
	services []string
	samples  []Sample
}

// Store keeps recent samples per proxy. It is safe for concurrent use.
type Store struct {
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	proxies map[Key]*proxy
}

// New returns a store whose service map covers window (DefaultWindow when
// zero or negative).
func New(window time.Duration) *Store {
	if window <= 0 {
		window = DefaultWindow
	}
	return &Store{window: window, now: time.Now, proxies: map[Key]*proxy{}}
}

// Window is how far back the service map looks.
func (s *Store) Window() time.Duration { return s.window }

// Record adds a sample of a proxy that serves services (its kuma.io/service
// values, the first one being the source of its outbound traffic), taken
// from metric families as a metrics message carries them.
func (s *Store) Record(key Key, services []string, families []*dto.MetricFamily) {
	sample := Sample{Time: s.now(), Clusters: clusterCounters(families)}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proxies[key]
	if p == nil {
		p = &proxy{}
		s.proxies[key] = p
	}
	p.services = append([]string(nil), services...)
	p.samples = append(p.samples, sample)
	s.trim(p, sample.Time)
	s.sweep(sample.Time)
}

// trim drops samples older than the window, keeping the newest one before
// it as the baseline of the rates.
func (s *Store) trim(p *proxy, now time.Time) {
	cut := 0
	for i := range p.samples {
		if now.Sub(p.samples[i].Time) > s.window {
			cut = i
		}
	}
	if n := len(p.samples) - cut; n > maxSamples {
		cut = len(p.samples) - maxSamples
	}
	if cut > 0 {
		p.samples = append([]Sample(nil), p.samples[cut:]...)
	}
}

// sweep forgets proxies that sent nothing for two windows.
func (s *Store) sweep(now time.Time) {
	for k, p := range s.proxies {
		if n := len(p.samples); n == 0 || now.Sub(p.samples[n-1].Time) > 2*s.window {
			delete(s.proxies, k)
		}
	}
}

// Forget drops a proxy's samples.
func (s *Store) Forget(key Key) {
	s.mu.Lock()
	delete(s.proxies, key)
	s.mu.Unlock()
}

// Samples returns a copy of a proxy's recent samples, oldest first.
func (s *Store) Samples(key Key) []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proxies[key]
	if p == nil {
		return nil
	}
	return append([]Sample(nil), p.samples...)
}

// clusterCounters extracts the per-cluster counters of the service map.
// Names are accepted as trellis-dp and Envoy's Prometheus output spell them
// (envoy_cluster_upstream_rq_total, label envoy_cluster_name) and as
// Envoy's metrics service does with emit_tags_as_labels
// (cluster.upstream_rq_total, label envoy.cluster_name).
func clusterCounters(families []*dto.MetricFamily) map[string]Counters {
	out := map[string]Counters{}
	for _, f := range families {
		name := normalize(f.GetName())
		var field func(*Counters, uint64)
		switch name {
		case "envoy_cluster_upstream_rq_total":
			field = func(c *Counters, v uint64) { c.Requests = v }
		case "envoy_cluster_upstream_cx_total":
			field = func(c *Counters, v uint64) { c.Connections = v }
		case "envoy_cluster_upstream_rq_xx":
			field = func(c *Counters, v uint64) { c.Errors = v }
		default:
			continue
		}
		for _, m := range f.GetMetric() {
			cluster, class := "", ""
			for _, l := range m.GetLabel() {
				switch normalizeLabel(l.GetName()) {
				case "envoy_cluster_name":
					cluster = l.GetValue()
				case "envoy_response_code_class":
					class = l.GetValue()
				}
			}
			if cluster == "" || (name == "envoy_cluster_upstream_rq_xx" && class != "5") {
				continue
			}
			c := out[cluster]
			field(&c, value(m))
			out[cluster] = c
		}
	}
	return out
}

// normalize turns a metric name into its Prometheus spelling with the
// envoy_ prefix.
func normalize(name string) string {
	name = strings.ReplaceAll(name, ".", "_")
	if !strings.HasPrefix(name, "envoy_") {
		name = "envoy_" + name
	}
	return name
}

func normalizeLabel(name string) string { return strings.ReplaceAll(name, ".", "_") }

// value reads a counter (or, leniently, a gauge or untyped) value.
func value(m *dto.Metric) uint64 {
	var v float64
	switch {
	case m.GetCounter() != nil:
		v = m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		v = m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		v = m.GetUntyped().GetValue()
	}
	if v < 0 {
		return 0
	}
	return uint64(v)
}
