// Package stats holds the proxy's counters and gauges under Envoy-like
// names (listener.<addr>.downstream_cx_total, cluster.<name>.upstream_rq_total,
// http.<stat_prefix>.downstream_rq_2xx, ...).
//
// Metrics are created when configuration is built, never on the request
// path: the hot path only does atomic adds on pointers it already holds.
// A metric lives as long as the Store, so its value survives configuration
// updates that keep its name, as Envoy's do.
package stats

import (
	"sync"
	"sync/atomic"
)

// Counter is a monotonically increasing value.
type Counter struct{ v atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Value returns the current value.
func (c *Counter) Value() uint64 { return c.v.Load() }

// Gauge is a value that goes up and down (active connections, members).
type Gauge struct{ v atomic.Int64 }

// Inc adds one.
func (g *Gauge) Inc() { g.v.Add(1) }

// Dec subtracts one.
func (g *Gauge) Dec() { g.v.Add(-1) }

// Set replaces the value.
func (g *Gauge) Set(n int64) { g.v.Store(n) }

// Value returns the current value.
func (g *Gauge) Value() int64 { return g.v.Load() }

// Store is a registry of named metrics. The zero value is not usable; call
// NewStore.
type Store struct {
	mu         sync.Mutex
	counters   map[string]*Counter
	gauges     map[string]*Gauge
	histograms map[string]*Histogram
	collectors []Collector
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{counters: map[string]*Counter{}, gauges: map[string]*Gauge{}, histograms: map[string]*Histogram{}}
}

// Kind is the type of a metric.
type Kind int

// The kinds of metrics.
const (
	KindCounter Kind = iota
	KindGauge
	KindHistogram
)

// Sample is one value a Collector reports.
type Sample struct {
	// Name is the dotted stat name, such as control_plane.connected_state.
	Name string
	// Kind is KindCounter or KindGauge.
	Kind  Kind
	Value uint64
}

// Collector reports metrics that live outside the Store (the xDS
// client's connection state, process figures); the Store reads it at
// every Snapshot and Families call. Samples must be cheap and safe for
// concurrent use.
type Collector interface {
	Samples() []Sample
}

// AddCollector makes c's samples part of the Store's output.
func (s *Store) AddCollector(c Collector) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.collectors = append(s.collectors, c)
}

// Histogram returns the histogram with the given name, creating it empty.
func (s *Store) Histogram(name string) *Histogram {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.histograms[name]
	if !ok {
		h = new(Histogram)
		s.histograms[name] = h
	}
	return h
}

// Counter returns the counter with the given name, creating it at zero.
func (s *Store) Counter(name string) *Counter {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.counters[name]
	if !ok {
		c = new(Counter)
		s.counters[name] = c
	}
	return c
}

// Gauge returns the gauge with the given name, creating it at zero.
func (s *Store) Gauge(name string) *Gauge {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.gauges[name]
	if !ok {
		g = new(Gauge)
		s.gauges[name] = g
	}
	return g
}

// Snapshot returns the current value of every counter and gauge, the
// collectors' included. A gauge that went negative through a bookkeeping
// race reads as zero. Histograms are not part of it (see Histograms).
func (s *Store) Snapshot() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64, len(s.counters)+len(s.gauges))
	for _, c := range s.collectors {
		for _, smp := range c.Samples() {
			out[smp.Name] = smp.Value
		}
	}
	for name, c := range s.counters {
		out[name] = c.Value()
	}
	for name, g := range s.gauges {
		v := g.Value()
		if v < 0 {
			v = 0
		}
		out[name] = uint64(v)
	}
	return out
}

// Histograms returns the current reading of every histogram by name.
func (s *Store) Histograms() map[string]HistogramValue {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]HistogramValue, len(s.histograms))
	for name, h := range s.histograms {
		out[name] = h.Value()
	}
	return out
}

// Registry creates or finds metrics by name. *Store and *Batch implement
// it.
type Registry interface {
	Counter(name string) *Counter
	Gauge(name string) *Gauge
	Histogram(name string) *Histogram
}

var (
	_ Registry = (*Store)(nil)
	_ Registry = (*Batch)(nil)
)

// Batch stages the metrics of a configuration that is being built: it
// returns the Store's metric when the name exists and otherwise a new one
// that only becomes visible in the Store on Commit. A rejected
// configuration therefore leaves no trace in the stats. Batches of one
// Store must not be built concurrently.
type Batch struct {
	store      *Store
	counters   map[string]*Counter
	gauges     map[string]*Gauge
	histograms map[string]*Histogram
}

// Batch returns an empty Batch on s.
func (s *Store) Batch() *Batch {
	return &Batch{store: s, counters: map[string]*Counter{}, gauges: map[string]*Gauge{}, histograms: map[string]*Histogram{}}
}

// Histogram returns the histogram with the given name.
func (b *Batch) Histogram(name string) *Histogram {
	if h, ok := b.histograms[name]; ok {
		return h
	}
	b.store.mu.Lock()
	h, ok := b.store.histograms[name]
	b.store.mu.Unlock()
	if !ok {
		h = new(Histogram)
		b.histograms[name] = h
	}
	return h
}

// Counter returns the counter with the given name.
func (b *Batch) Counter(name string) *Counter {
	if c, ok := b.counters[name]; ok {
		return c
	}
	b.store.mu.Lock()
	c, ok := b.store.counters[name]
	b.store.mu.Unlock()
	if !ok {
		c = new(Counter)
		b.counters[name] = c
	}
	return c
}

// Gauge returns the gauge with the given name.
func (b *Batch) Gauge(name string) *Gauge {
	if g, ok := b.gauges[name]; ok {
		return g
	}
	b.store.mu.Lock()
	g, ok := b.store.gauges[name]
	b.store.mu.Unlock()
	if !ok {
		g = new(Gauge)
		b.gauges[name] = g
	}
	return g
}

// Commit adds the batch's new metrics to the Store.
func (b *Batch) Commit() {
	b.store.mu.Lock()
	defer b.store.mu.Unlock()
	for name, c := range b.counters {
		if _, ok := b.store.counters[name]; !ok {
			b.store.counters[name] = c
		}
	}
	for name, g := range b.gauges {
		if _, ok := b.store.gauges[name]; !ok {
			b.store.gauges[name] = g
		}
	}
	for name, h := range b.histograms {
		if _, ok := b.store.histograms[name]; !ok {
			b.store.histograms[name] = h
		}
	}
}

// Scope is a Registry plus a name prefix ending in a dot, such as
// "cluster.backend.". It is a small value, cheap to pass around.
type Scope struct {
	reg    Registry
	prefix string
}

// NewScope returns a view of reg that prefixes every name with prefix + ".".
func NewScope(reg Registry, prefix string) Scope {
	return Scope{reg: reg, prefix: prefix + "."}
}

// Counter returns the counter prefix + name.
func (s Scope) Counter(name string) *Counter { return s.reg.Counter(s.prefix + name) }

// Gauge returns the gauge prefix + name.
func (s Scope) Gauge(name string) *Gauge { return s.reg.Gauge(s.prefix + name) }

// Histogram returns the histogram prefix + name.
func (s Scope) Histogram(name string) *Histogram { return s.reg.Histogram(s.prefix + name) }

// Sanitize turns a name into one stat-name segment the way Envoy does for
// addresses: ':' becomes '_' (so 127.0.0.1:10001 is 127.0.0.1_10001).
func Sanitize(name string) string {
	b := []byte(name)
	for i, c := range b {
		if c == ':' {
			b[i] = '_'
		}
	}
	return string(b)
}
