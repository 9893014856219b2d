package stats

import (
	"sync/atomic"
	"time"
)

// DefaultBuckets are Envoy's default histogram bucket upper bounds, in
// milliseconds (the unit of every Envoy timing histogram).
var DefaultBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// bucketBoundsMicros are DefaultBuckets in microseconds, for integer
// comparisons on the hot path.
var bucketBoundsMicros = func() [len19]uint64 {
	var b [len19]uint64
	for i, ms := range DefaultBuckets {
		b[i] = uint64(ms * 1000)
	}
	return b
}()

// len19 is the number of bounds in DefaultBuckets.
const len19 = 19

// Histogram counts observations (durations in milliseconds) in Envoy's
// default buckets. Recording is lock-free: two atomic adds.
type Histogram struct {
	// counts[i] counts the observations in bucket i (not cumulative); the
	// last slot counts those above the largest bound.
	counts    [len19 + 1]atomic.Uint64
	sumMicros atomic.Uint64
}

// RecordDuration adds one observation of d.
func (h *Histogram) RecordDuration(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.recordMicros(uint64(d / time.Microsecond))
}

// Record adds one observation of ms milliseconds.
func (h *Histogram) Record(ms uint64) { h.recordMicros(ms * 1000) }

func (h *Histogram) recordMicros(us uint64) {
	i := 0
	for i < len19 && us > bucketBoundsMicros[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumMicros.Add(us)
}

// HistogramValue is a point-in-time reading of a Histogram.
type HistogramValue struct {
	// Cumulative[i] counts the observations <= DefaultBuckets[i].
	Cumulative [len19]uint64
	// Count is the number of observations.
	Count uint64
	// SumMillis is their sum in milliseconds.
	SumMillis float64
}

// Value reads the histogram. Count always equals the sum of the buckets
// read (it is computed from them), so the reading is self-consistent even
// while observations are being recorded.
func (h *Histogram) Value() HistogramValue {
	var v HistogramValue
	var acc uint64
	for i := range len19 {
		acc += h.counts[i].Load()
		v.Cumulative[i] = acc
	}
	v.Count = acc + h.counts[len19].Load()
	v.SumMillis = float64(h.sumMicros.Load()) / 1000
	return v
}
